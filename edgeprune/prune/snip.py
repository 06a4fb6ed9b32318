"""SNIP and iterative magnitude pruning, the baselines of CUT (arXiv 2504.09803, Sec. 4.2) and
AdapMTL (arXiv 2408.03913, Table 1).

- SNIP (Lee et al., ICLR 2019): connection sensitivity |w * dL/dw| of the summed task losses on
  one calibration batch (Eq. 6), one global top-k over all prunable weights.
- IMP (Han et al., NeurIPS 2015; Frankle & Carbin, ICLR 2019 without rewinding): ``rounds``
  rounds of global magnitude pruning on a geometric schedule, s_i = 1 - (1 - s)^(i/rounds),
  each followed by ``round_steps`` steps of masked fine-tuning.

Both take ``granularity`` ``element`` (the papers'), ``block:RxC`` (each r x c block of the
weight ranked by its mean score, so the masks are the blocks the BSR kernel runs fast) or
``N:M`` (the N best of every M input channels). IMP's rounds then tighten the pattern
gradually: round i keeps N_i of every M, N_i = M (1 - s_i) rounded, ending at N.

Usage::

    masks = SNIPPruner().prune(ctx, 0.9)
    masks = IMPPruner(rounds=3, round_steps=100).prune(ctx, 0.9)   # fine-tunes ctx.model in place
"""

from __future__ import annotations

from edgeprune.masks import Granularity, MaskSet
from edgeprune.prune.context import PruneContext
from edgeprune.prune.importance import MagnitudeImportance, connection_sensitivity
from edgeprune.prune.latency import latency_allocation, refine
from edgeprune.prune.policy import allocate, score_granularity
from edgeprune.train.finetune import FinetuneConfig, masked_finetune


class SNIPPruner:
    """Connection sensitivity on one batch, global top-k."""

    def __init__(self, calib_batch_size: int = 32, granularity: str = "element", allocate: str = "method",
                 target: str = "host", input_size: str | None = None) -> None:  # fmt: skip
        self.calib_batch_size = calib_batch_size
        self.granularity = score_granularity(granularity, "snip")
        self.latency = latency_allocation(allocate, target, self.granularity, input_size)

    def prune(self, ctx: PruneContext, sparsity: float) -> MaskSet:
        scores = connection_sensitivity(ctx, 1, self.calib_batch_size, per_task=False)["all"]
        masks = allocate(scores, sparsity, self.granularity, "global")
        if self.latency is None:
            return MaskSet(masks, default=self.granularity)
        masks, info = refine(self.latency, ctx, scores, sparsity, self.granularity, masks)
        return MaskSet(masks, default=self.granularity, info=info)


class IMPPruner:
    """Iterative global magnitude pruning with masked fine-tuning between rounds."""

    def __init__(self, rounds: int = 3, round_steps: int = 100, round_lr: float = 1e-3,
                 granularity: str = "element", allocate: str = "method", target: str = "host",
                 input_size: str | None = None) -> None:  # fmt: skip
        self.rounds, self.round_steps, self.round_lr = max(1, rounds), round_steps, round_lr
        self.granularity = score_granularity(granularity, "imp")
        self.latency = latency_allocation(allocate, target, self.granularity, input_size)

    def prune(self, ctx: PruneContext, sparsity: float) -> MaskSet:
        cfg = FinetuneConfig(steps=self.round_steps, lr=self.round_lr, seed=ctx.seed)
        masks = MaskSet({})
        info: dict[str, object] = {}
        for i in range(1, self.rounds + 1):
            target = 1 - (1 - sparsity) ** (i / self.rounds)
            scores = MagnitudeImportance().scores(ctx)
            gran = self._round_granularity(target)
            kept = allocate(scores, target, gran, "global")
            if self.latency is not None:  # each round's allocation for the lowest predicted latency
                kept, info = refine(self.latency, ctx, scores, target, gran, kept)
            masks = MaskSet(kept, default=self.granularity)
            if i < self.rounds and self.round_steps > 0:
                masked_finetune(ctx.model, masks, ctx.workload, ctx.tasks, cfg)
        schedule = [round(1 - (1 - sparsity) ** (i / self.rounds), 4) for i in range(1, self.rounds + 1)]
        masks.info = {"schedule": schedule, "round_steps": self.round_steps, **info}
        return masks

    def _round_granularity(self, target: float) -> Granularity:
        """The round's granularity: N:M loosened to N_i of M on the way to the final N."""
        gran = self.granularity
        if gran.kind != "nm":
            return gran
        return Granularity("nm", min(gran.b, max(gran.a, round(gran.b * (1 - target)))), gran.b)
