"""Importance criteria: a score per weight (higher = more important), nothing else.

Criteria know nothing of granularity or sparsity; a policy (``policy.py``) turns scores into
masks. A new criterion is one class with ``scores(ctx) -> {param: Tensor}``. The gradient-based
ones (SNIP, CUT, the SMSP library's Taylor scores) share one loop, :func:`weight_gradient_sums`.
"""

from __future__ import annotations

from typing import Protocol, cast

import torch
from torch import Tensor

from edgeprune.prune.context import PruneContext
from edgeprune.workload.base import repeat_batches


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


def weight_gradient_sums(
    ctx: PruneContext, batches: int, batch_size: int, *, per_task: bool, absolute: bool
) -> dict[str, dict[str, Tensor]]:
    """w * dL/dw per weight (its absolute value if ``absolute``), summed over ``batches``
    calibration batches (shuffled with ``ctx.seed``), with the weights frozen and the model in
    eval mode (its mode is restored afterwards).

    ``per_task``: one score set per task from that task's loss alone; else one set, under the
    key ``"all"``, from the sum of the task losses. A parameter a task does not reach scores
    zero for it."""
    model, names = ctx.model, list(ctx.params)
    params = [ctx.params[n] for n in names]
    keys = ctx.tasks if per_task else ["all"]
    sums = {k: {n: torch.zeros_like(p, dtype=torch.float32) for n, p in ctx.params.items()} for k in keys}
    was_training = model.training
    model.eval()
    try:
        for x, y in repeat_batches(ctx.workload, "calibration", batch_size, batches, tasks=ctx.tasks, seed=ctx.seed):
            losses = ctx.workload.task_losses(model(x), y)
            total = cast(Tensor, sum(losses.values()))
            targets = [(t, losses[t]) for t in ctx.tasks] if per_task else [("all", total)]
            for i, (key, loss) in enumerate(targets):
                grads = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=i < len(targets) - 1)
                for n, p, g in zip(names, params, grads, strict=True):
                    if g is not None:
                        term = p.detach() * g
                        sums[key][n] += term.abs() if absolute else term
    finally:
        model.train(was_training)
    return sums


def connection_sensitivity(
    ctx: PruneContext, batches: int, batch_size: int, per_task: bool
) -> dict[str, dict[str, Tensor]]:
    """|w * dL/dw| summed over ``batches`` calibration batches: |dL/dm| for a mask m of ones
    multiplied onto the weights, the sensitivity of SNIP (Lee et al., ICLR 2019, Eq. 6) and of
    CUT's isomorphic mask copy (arXiv 2504.09803, Sec. 3.1, Eq. 1).

    ``per_task``: one score set per task (CUT); else one set under ``"all"`` from the summed
    task losses (SNIP)."""
    return weight_gradient_sums(ctx, batches, batch_size, per_task=per_task, absolute=True)


def taylor_terms(ctx: PruneContext, batches: int = 16, batch_size: int = 32) -> dict[str, Tensor]:
    """Signed w * dL/dw of the summed task losses over calibration batches: the first-order
    Taylor expansion of removing weights (Molchanov et al., CVPR 2019). Signed, so a structure's
    score is the absolute value of its terms' sum, not a per-weight importance."""
    return weight_gradient_sums(ctx, batches, batch_size, per_task=False, absolute=False)["all"]
