"""What a pruning method receives: the extracted model, its tasks and structure, the workload."""

from __future__ import annotations

import dataclasses

from torch import Tensor, nn

from edgeprune.taskgraph.graph import TaskGraph
from edgeprune.workload.base import Workload


@dataclasses.dataclass
class PruneContext:
    """The model (already cut to ``tasks``), its task graph, its prunable weights by name, the
    workload for data and losses, and an example input."""

    model: nn.Module
    tasks: list[str]
    graph: TaskGraph
    params: dict[str, nn.Parameter]
    workload: Workload
    example: Tensor
    seed: int = 0
    source_model: nn.Module | None = None  # the full pre-trained model, before task extraction
    source_hash: str = ""
    output_layers: frozenset[str] = frozenset()  # weights whose filters are task outputs
