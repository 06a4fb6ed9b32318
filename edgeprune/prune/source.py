"""The first step of every pruning run: the pre-trained model, cut down to the requested tasks.

Usage::

    loaded = load_and_extract(workload, ["seg", "depth"], model=None, weights=None)
    loaded.model, loaded.graph.components()
"""

from __future__ import annotations

import copy
import dataclasses

import torch
from torch import nn

from edgeprune.taskgraph.extract import extract_tasks
from edgeprune.taskgraph.graph import TaskGraph, discover_task_graph, model_outputs
from edgeprune.workload.base import Workload
from edgeprune.workload.registry import build_model


@dataclasses.dataclass
class Loaded:
    """The pre-trained model as shipped (``source``), its copy cut down to ``tasks`` (``model``,
    which pruning changes), and the extracted model's task graph."""

    source: nn.Module
    model: nn.Module
    tasks: list[str]
    graph: TaskGraph


def load_and_extract(workload: Workload, tasks: list[str] | None, model: str | None, weights: str | None) -> Loaded:
    """Build the pre-trained model and extract ``tasks`` (default: all) from a copy of it."""
    source = build_model(workload, model, weights)
    example = workload.example()
    with torch.no_grad():
        chosen = list(tasks) if tasks is not None else list(model_outputs(source, example))
    extracted = extract_tasks(copy.deepcopy(source), chosen)  # validates the task names
    return Loaded(source, extracted, chosen, discover_task_graph(extracted, example))
