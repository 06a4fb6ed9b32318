"""CUT: pruning pre-trained multi-task models into compact models for edge devices
(arXiv 2504.09803).

1. Task-decoupled scoring (Sec. 3.1, Eq. 1): for each requested task k separately, the
   pre-trained weights stay frozen and every prunable weight is scored by the gradient magnitude
   of a mask of ones multiplied onto it, |dL_k/dm| = |w * dL_k/dw|, summed over the calibration
   batches (50 by default), then normalised per task (each task's scores sum to one).
2. Per-task keep masks (Sec. 3.2): task k keeps the top ``r`` share of the weights it reaches
   (its shared and its own parameters), ranked by its scores.
3. Parameter fusion (Sec. 3.2): a parameter reached by one task keeps that task's mask; shared
   ones are fused by OR, AND or majority vote (:mod:`edgeprune.prune.fusion`).
4. The keep ratio ``r`` is searched (bisection) so that the fused masks meet the requested
   overall sparsity, whatever the fusion — the released code's hand-set ratios (0.08 for three
   NYU-v2 tasks at 90%) are what this search finds for their setting.
With ``granularity`` ``block:RxC`` (not in the paper), steps 2-4 rank r x c blocks of each
weight by their mean score instead of single weights, the method otherwise unchanged: every
task's mask, and so the fused one, is made of whole blocks, which the BSR kernel runs fast.
With ``N:M`` (not in the paper either) the pattern fixes the sparsity, so there is no ratio to
search: each weight's fused rank (the smallest keep ratio at which step 3's fusion would keep
it) orders the weights, and every group of M input channels keeps its N best. With
``allocate="latency"`` (``prune/latency.py``) each layer's sparsity is moved, within a band
around the one steps 2-4 give it, to where the target's cost table predicts the lowest latency,
and each layer keeps its weights of best fused rank: the fusion's order, another budget.

5. Minimal fine-tuning follows with a small learning rate (Sec. 4.1: 1e-5, up to 1,000
   iterations): the defaults this method recommends to the pipeline.

Usage::

    pruner = CUTPruner(fusion="vote")
    masks = pruner.prune(ctx, 0.9)        # masks.info["keep_ratio"], masks.info["scoring_passes"]
"""

from __future__ import annotations

import time

import torch
from torch import Tensor

from edgeprune.errors import UserError
from edgeprune.masks import ELEMENT, Granularity, MaskSet
from edgeprune.prune.context import PruneContext
from edgeprune.prune.fusion import FUSIONS, fuse, fused_rank
from edgeprune.prune.importance import connection_sensitivity
from edgeprune.prune.latency import latency_allocation, refine
from edgeprune.prune.policy import expand_groups, group_scores, nm_masks, score_granularity


def task_ranks(scores: dict[str, Tensor], reached: list[str], gran: Granularity = ELEMENT
               ) -> tuple[dict[str, Tensor], int]:  # fmt: skip
    """Rank (0 = most important) of every weight among those a task reaches, by its scores; with
    a block granularity, of every block, by its mean score (per group, flattened)."""
    grouped = {n: scores[n] if gran.kind != "block" else group_scores(scores[n], gran)[0] for n in reached}
    flat = torch.cat([grouped[n].reshape(-1) for n in reached])
    order = torch.argsort(flat, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order))
    out, start = {}, 0
    for n in reached:
        size = grouped[n].numel()
        out[n] = rank[start : start + size].reshape(grouped[n].shape)
        start += size
    return out, len(flat)


class CUTPruner:
    """Task-decoupled gradient scoring, per-task top-k, fusion of shared parameters."""

    def __init__(self, fusion: str = "or", vote_min: int | None = None, calib_batches: int = 50,
                 calib_batch_size: int = 8, granularity: str = "element", allocate: str = "method",
                 target: str = "host", input_size: str | None = None) -> None:  # fmt: skip
        if fusion not in FUSIONS:
            raise UserError(f"unknown fusion '{fusion}'; use {', '.join(FUSIONS)}")
        if vote_min is not None and (fusion != "vote" or vote_min < 1):
            raise UserError(f"--vote-min {vote_min} needs --fusion vote and a count of at least 1")
        self.fusion, self.vote_min = fusion, vote_min
        self.calib_batches, self.calib_batch_size = calib_batches, calib_batch_size
        self.granularity = score_granularity(granularity, "cut")
        self.latency = latency_allocation(allocate, target, self.granularity, input_size)

    def scores(self, ctx: PruneContext) -> dict[str, dict[str, Tensor]]:
        """Per task: normalised |w * dL_k/dw| over the calibration batches."""
        raw = connection_sensitivity(ctx, self.calib_batches, self.calib_batch_size, per_task=True)
        out = {}
        for task, per in raw.items():
            total = sum(float(s.sum()) for s in per.values()) or 1.0
            out[task] = {n: s / total for n, s in per.items()}
        return out

    def masks_at(self, ranks: dict[str, tuple[dict[str, Tensor], int]], ctx: PruneContext,
                 ratio: float) -> dict[str, Tensor]:  # fmt: skip
        """Fused masks when every task keeps the top ``ratio`` of the weights it reaches."""
        out = {}
        for n in ctx.params:
            proposals = {t: self._keep(ranks[t][0][n] < ratio * ranks[t][1], ctx.params[n])
                         for t in ctx.tasks if n in ranks[t][0]}  # fmt: skip
            out[n] = fuse(proposals, self.fusion, self.vote_min) if proposals else torch.zeros_like(
                ctx.params[n], dtype=torch.bool)  # fmt: skip
        return out

    def _keep(self, keep: Tensor, param: Tensor) -> Tensor:
        """A task's keep vector as an element mask (blocks expanded)."""
        return keep if self.granularity.kind != "block" else expand_groups(keep, param.shape, self.granularity)

    def fused_order(self, ranks: dict[str, tuple[dict[str, Tensor], int]], ctx: PruneContext) -> dict[str, Tensor]:
        """Per weight, minus its fused rank (higher is kept first), at the weight's shape."""
        order = {}
        for n, p in ctx.params.items():
            normalised = {t: ranks[t][0][n] / ranks[t][1] for t in ctx.tasks if n in ranks[t][0]}
            fused = -fused_rank(normalised, self.fusion, self.vote_min) if normalised else torch.zeros(p.numel())
            order[n] = fused.reshape(p.shape) if self.granularity.kind != "block" else expand_groups(
                fused, p.shape, self.granularity)  # fmt: skip
        return order

    def prune(self, ctx: PruneContext, sparsity: float) -> MaskSet:
        t0 = time.perf_counter()
        scores = self.scores(ctx)
        scoring_s = time.perf_counter() - t0
        ranks = {}
        for t in ctx.tasks:
            reached = [n for n in ctx.params if t in ctx.graph.param_tasks[n]]
            ranks[t] = task_ranks(scores[t], reached, self.granularity)
        info: dict[str, object] = {"fusion": self.fusion, "scoring_s": scoring_s,
                                   "scoring_passes": {"forward": self.calib_batches,
                                                      "backward": self.calib_batches * len(ctx.tasks),
                                                      "batch_size": self.calib_batch_size}}  # fmt: skip
        if self.granularity.kind == "nm":  # the N best of every M by fused rank: the pattern sets the sparsity
            return MaskSet(nm_masks(self.fused_order(ranks, ctx), self.granularity), default=self.granularity,
                           info=info)  # fmt: skip

        total = sum(p.numel() for p in ctx.params.values())
        want = (1 - sparsity) * total

        def kept(masks: dict[str, Tensor]) -> int:
            return sum(int(m.sum()) for m in masks.values())

        lo, hi = 0.0, 1.0
        best = (float("inf"), 1.0)
        for _ in range(40):
            mid = (lo + hi) / 2
            k = kept(self.masks_at(ranks, ctx, mid))
            best = min(best, (abs(k - want), mid))
            if k < want:
                lo = mid
            else:
                hi = mid
        ratio = best[1]
        masks = self.masks_at(ranks, ctx, ratio)
        if self.latency is not None:  # per-layer sparsities for the lowest predicted latency, by fused rank
            masks, planned = refine(self.latency, ctx, self.fused_order(ranks, ctx), sparsity, self.granularity, masks)
            info.update(planned)
        return MaskSet(masks, default=self.granularity, info={"keep_ratio": ratio, **info})
