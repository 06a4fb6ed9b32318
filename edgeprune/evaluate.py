"""Evaluate a multi-task model on a workload's evaluation split."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from edgeprune.workload.base import Workload


@torch.no_grad()
def predict(model: nn.Module, workload: Workload, tasks: list[str], batch_size: int = 64,
            progress: Callable[[int], None] | None = None) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """All evaluation predictions and targets of ``tasks``, concatenated."""
    was_training = model.training
    model.eval()
    preds: dict[str, list[Tensor]] = {t: [] for t in tasks}
    targs: dict[str, list[Tensor]] = {t: [] for t in tasks}
    for x, y in workload.batches("eval", batch_size, tasks=tasks):
        out = model(x)
        for t in tasks:
            preds[t].append(out[t])
            targs[t].append(y[t])
        if progress:
            progress(len(x))
    model.train(was_training)
    return {t: torch.cat(v) for t, v in preds.items()}, {t: torch.cat(v) for t, v in targs.items()}


def evaluate(model: nn.Module, workload: Workload, tasks: list[str], batch_size: int = 64,
             progress: Callable[[int], None] | None = None) -> dict[str, dict[str, float]]:
    """``{task: {metric: value}}`` over the evaluation split."""
    preds, targs = predict(model, workload, tasks, batch_size, progress)
    return {t: {m.name: m.fn(preds[t], targs[t]) for m in workload.tasks[t].metrics} for t in tasks}


def flatten(results: dict[str, dict[str, float]]) -> dict[str, float]:
    """``{"task.metric": value}``."""
    return {f"{t}.{m}": v for t, ms in results.items() for m, v in ms.items()}
