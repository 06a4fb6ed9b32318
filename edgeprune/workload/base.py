"""The workload contract.

A workload bundles what a pruning method needs besides the weights: the tasks (each with its
loss and metrics, and whether higher is better), one or more model architectures with their
pre-trained weights, and data for calibration, fine-tuning and evaluation.

Usage (a user's own workload, passed as ``--workload my_file.py:WORKLOAD``)::

    from edgeprune.workload import Metric, ModelSpec, Task, Workload
    WORKLOAD = Workload(
        name="mine",
        tasks={"cls": Task("cls", torch.nn.functional.cross_entropy, (Metric("top1", top1, True),))},
        models={"net": ModelSpec("net", build=lambda: MyNet(), weights="net.safetensors")},
        data=lambda split: (inputs, {"cls": labels}),   # split: "train" | "calibration" | "eval"
    )
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from edgeprune.errors import UserError
from edgeprune.graph.inputs import resized

Split = Literal["train", "calibration", "eval"]
SPLITS: tuple[Split, ...] = ("train", "calibration", "eval")
TensorData = tuple[Tensor, dict[str, Tensor]]
"""A whole split in memory: inputs (N, ...) and one target tensor (N, ...) per task."""


@dataclasses.dataclass(frozen=True)
class Metric:
    """A metric over the whole evaluation set: ``fn(predictions, targets) -> float``."""

    name: str
    fn: Callable[[Tensor, Tensor], float]
    higher_is_better: bool


@dataclasses.dataclass(frozen=True)
class Task:
    """One output of the model: its loss ``loss(prediction, target) -> scalar`` and metrics."""

    name: str
    loss: Callable[[Tensor, Tensor], Tensor]
    metrics: tuple[Metric, ...]
    loss_weight: float = 1.0


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A model architecture (``build()`` returns it with all the workload's tasks, untrained)
    and the file of its pre-trained weights (safetensors), if any."""

    name: str
    build: Callable[[], nn.Module]
    weights: str | Path | None = None
    description: str = ""


@dataclasses.dataclass
class Workload:
    """Tasks, models (the first is the default) and data of one problem."""

    name: str
    tasks: dict[str, Task]
    models: dict[str, ModelSpec]
    data: Callable[[Split], TensorData]
    description: str = ""
    _cache: dict[str, TensorData] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def default_model(self) -> str:
        return next(iter(self.models))

    def split(self, split: Split) -> TensorData:
        """The whole split, generated or loaded once per process."""
        if split not in self._cache:
            self._cache[split] = self.data(split)
        return self._cache[split]

    def example(self) -> Tensor:
        """Two calibration inputs: enough to trace the model and discover its task graph."""
        return self.split("calibration")[0][:2]

    def inputs_at(self, n: int, size: tuple[int, int] | None = None) -> Tensor:
        """The first ``n`` calibration inputs, resized (bilinear) to a deploy resolution ``size``
        (H, W); what compile exports at and what verify checks with."""
        x = self.split("calibration")[0][:n].float()
        if len(x) < n:
            raise UserError(f"workload '{self.name}' has only {len(x)} calibration inputs, not {n}")
        return resized(x, size)

    def batches(
        self,
        split: Split,
        batch_size: int,
        *,
        tasks: list[str] | None = None,
        shuffle_seed: int | None = None,
        limit: int | None = None,
    ) -> Iterator[TensorData]:
        """Iterate over ``split`` in batches (optionally shuffled, at most ``limit`` batches)."""
        inputs, targets = self.split(split)
        order = torch.arange(len(inputs))
        if shuffle_seed is not None:
            order = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(shuffle_seed))
        names = tasks if tasks is not None else list(targets)
        for count, start in enumerate(range(0, len(inputs), batch_size)):
            if limit is not None and count >= limit:
                return
            idx = order[start : start + batch_size]
            yield inputs[idx], {t: targets[t][idx] for t in names}

    def task_losses(self, outputs: Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The weighted loss of each task that has targets."""
        return {t: self.tasks[t].loss_weight * self.tasks[t].loss(outputs[t], targets[t]) for t in targets}

    def higher_is_better(self) -> dict[str, bool]:
        """``task.metric`` -> whether a higher value is better."""
        return {f"{t.name}.{m.name}": m.higher_is_better for t in self.tasks.values() for m in t.metrics}


def repeat_batches(workload: Workload, split: Split, batch_size: int, steps: int, *, tasks: list[str],
                   seed: int = 0) -> Iterator[TensorData]:
    """``steps`` batches, cycling through reshuffled epochs of ``split``."""
    produced, epoch = 0, 0
    while produced < steps:
        for batch in workload.batches(split, batch_size, tasks=tasks, shuffle_seed=seed + epoch):
            if produced >= steps:
                return
            yield batch
            produced += 1
        epoch += 1
