"""Discovering a multi-task model's task graph by back-propagation.

The contract: ``model(x)`` returns ``dict[str, Tensor]``, one entry per task. The graph is
found, not declared: each task's output is back-propagated and the parameters it reaches are
recorded. A parameter reached by every requested task belongs to the shared ``backbone``; one
reached by a single task to that task's head (``head:<task>``); one reached by a subset of the
tasks to a partly-shared component (``shared:<a>+<b>``), as in tree-shaped models or heads that
share a neck. This is the structure CUT (arXiv 2504.09803, Sec. 3.2) fuses masks over and AdapMTL
(arXiv 2408.03913, Sec. 3.1) gives one threshold per component.

Usage::

    graph = discover_task_graph(model, torch.randn(1, 3, 64, 64))
    graph.components()   # [Component("backbone", {"seg","depth","normal"}, ...), ...]
    graph.component_of("heads.seg.classifier.weight")   # "head:seg"
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from edgeprune.errors import UserError

BACKBONE = "backbone"


@dataclasses.dataclass(frozen=True)
class Component:
    """A set of parameters reached by the same set of tasks."""

    name: str
    tasks: frozenset[str]
    params: tuple[str, ...]
    numel: int


def component_name(tasks: frozenset[str], all_tasks: Sequence[str]) -> str:
    """``backbone`` if shared by all tasks, ``head:t`` for one task, else ``shared:a+b``."""
    if not tasks:
        return "unused"
    if tasks == frozenset(all_tasks):
        return BACKBONE
    ordered = [t for t in all_tasks if t in tasks]
    return f"head:{ordered[0]}" if len(ordered) == 1 else "shared:" + "+".join(ordered)


@dataclasses.dataclass(frozen=True)
class TaskGraph:
    """Which tasks reach which parameters."""

    tasks: tuple[str, ...]
    param_tasks: dict[str, frozenset[str]]
    param_numel: dict[str, int]

    def component_of(self, param: str) -> str:
        return component_name(self.param_tasks[param], self.tasks)

    def components(self) -> list[Component]:
        """Components in a stable order: backbone, partly shared, heads, unused."""
        groups: dict[frozenset[str], list[str]] = {}
        for name, tasks in self.param_tasks.items():
            groups.setdefault(tasks, []).append(name)

        def order(tasks: frozenset[str]) -> tuple[int, list[int]]:
            idx = sorted(self.tasks.index(t) for t in tasks)
            return (-len(tasks) if tasks else 1, idx)

        return [
            Component(component_name(ts, self.tasks), ts, tuple(ps), sum(self.param_numel[p] for p in ps))
            for ts, ps in sorted(groups.items(), key=lambda kv: order(kv[0]))
        ]


def model_outputs(model: nn.Module, x: Tensor) -> dict[str, Tensor]:
    """Run ``model`` and check the contract: a dict of tensors keyed by task name."""
    out = model(x)
    if not isinstance(out, dict) or not all(isinstance(v, Tensor) for v in out.values()):
        raise UserError(f"the model's forward must return dict[str, Tensor], got {type(out).__name__}")
    return out


def discover_task_graph(model: nn.Module, example: Tensor, tasks: Sequence[str] | None = None) -> TaskGraph:
    """Back-propagate each task's output on ``example`` and record the parameters it reaches.

    A parameter whose gradient is defined (even if numerically zero) is reached; one the
    autograd graph never touches is not. The model runs in eval mode so batch statistics do not
    depend on ``example``'s batch size."""
    was_training = model.training
    model.eval()
    params = dict(model.named_parameters())
    try:
        with torch.enable_grad():
            out = model_outputs(model, example)
            names = list(tasks) if tasks is not None else list(out)
            unknown = [t for t in names if t not in out]
            if unknown:
                raise UserError(f"unknown task(s) {', '.join(unknown)}; the model has: {', '.join(out)}")
            reached: dict[str, set[str]] = {p: set() for p in params}
            trainable = [p for p in params if params[p].requires_grad]
            for i, task in enumerate(names):
                grads = torch.autograd.grad(
                    out[task].sum(), [params[p] for p in trainable], allow_unused=True,
                    retain_graph=i < len(names) - 1,
                )  # fmt: skip
                for p, g in zip(trainable, grads, strict=True):
                    if g is not None:
                        reached[p].add(task)
    finally:
        model.train(was_training)
    return TaskGraph(
        tasks=tuple(names),
        param_tasks={p: frozenset(ts) for p, ts in reached.items()},
        param_numel={p: v.numel() for p, v in params.items()},
    )
