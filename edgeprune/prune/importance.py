"""Importance criteria: a score per weight (higher = more important), nothing else.

Criteria know nothing of granularity or sparsity; a policy (``policy.py``) turns scores into
masks. A new criterion is one class with ``scores(ctx) -> {param: Tensor}``.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from edgeprune.prune.context import PruneContext


class Importance(Protocol):
    def scores(self, ctx: PruneContext) -> dict[str, Tensor]: ...


class MagnitudeImportance:
    """|w| (Han et al., NeurIPS 2015). Summed over a filter it is the L1-filter criterion of
    Li et al., ICLR 2017."""

    def scores(self, ctx: PruneContext) -> dict[str, Tensor]:
        return {n: p.detach().abs().float() for n, p in ctx.params.items()}


class RandomImportance:
    """Uniform random scores from a seeded generator: the random-pruning baseline."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def scores(self, ctx: PruneContext) -> dict[str, Tensor]:
        gen = torch.Generator().manual_seed(self.seed)
        return {n: torch.rand(p.shape, generator=gen) for n, p in ctx.params.items()}


def connection_sensitivity(
    ctx: PruneContext, batches: int, batch_size: int, per_task: bool
) -> dict[str, dict[str, Tensor]]:
    """|w * dL/dw| summed over ``batches`` calibration batches, with the weights frozen and the
    model in eval mode. This is |dL/dm| for a mask m of ones multiplied onto the weights, the
    sensitivity of SNIP (Lee et al., ICLR 2019, Eq. 6) and of CUT's isomorphic mask copy
    (arXiv 2504.09803, Sec. 3.1, Eq. 1).

    ``per_task``: one score set per task from that task's loss alone (CUT); else one set, under
    the key ``"all"``, from the sum of the task losses (SNIP). A parameter a task does not reach
    scores zero for it."""
    from edgeprune.workload.base import repeat_batches

    model, names = ctx.model, list(ctx.params)
    params = [ctx.params[n] for n in names]
    keys = ctx.tasks if per_task else ["all"]
    scores = {k: {n: torch.zeros_like(p, dtype=torch.float32) for n, p in ctx.params.items()} for k in keys}
    was_training = model.training
    model.eval()
    try:
        for x, y in repeat_batches(ctx.workload, "calibration", batch_size, batches, tasks=ctx.tasks, seed=ctx.seed):
            losses = ctx.workload.task_losses(model(x), y)
            targets = [(t, losses[t]) for t in ctx.tasks] if per_task else [("all", sum(losses.values()))]
            for i, (key, loss) in enumerate(targets):
                grads = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=i < len(targets) - 1)
                for n, p, g in zip(names, params, grads, strict=True):
                    if g is not None:
                        scores[key][n] += (p.detach() * g).abs()
    finally:
        model.train(was_training)
    return scores
