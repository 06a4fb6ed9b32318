"""Workloads: the model, the tasks with their loss and metrics, and the data a method needs."""

from edgeprune.workload.base import Metric, ModelSpec, Task, TensorData, Workload

__all__ = ["Metric", "ModelSpec", "Task", "TensorData", "Workload"]
