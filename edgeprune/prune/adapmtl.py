"""AdapMTL: adaptive pruning framework for multitask learning models (arXiv 2408.03913).

1. Component-wise soft thresholds (Sec. 3.2): every prunable weight is used as
   w' = sign(w) * relu(|w| - sigmoid(s_c)), with one learnable ``s_c`` per component c (the
   shared backbone, each head and each partly-shared part, from the task graph), co-optimised
   with the weights by the task losses. The non-differentiable points take the sub-gradient
   autograd gives (0 at |w| = sigmoid(s)). A component whose loss resists a higher threshold
   keeps more weights: that is the learned allocation.
2. Adaptive task weighting (Sec. 3.3; ``main/trainer.py`` of the official code): after a
   warm-up each task records |L_(t-1) - L_t| / L_t; its loss weight is the mean of those values
   over a sliding window (default 500 iterations), normalised so the weights sum to the number
   of tasks. A task whose loss still fluctuates gets more weight and its component is
   protected; a stable task gets less and its component is pruned harder.
3. Stop (Sec. 3.4): once the overall sparsity (parameter-count weighted over components)
   reaches the target, the thresholds stop; the weights keep training. The final mask is the
   exact zeros of w', and w' becomes the weights.

Where this differs from the paper, and why: the authors raise the thresholds with an L2 decay on
``s`` over 20k-100k iterations (initial s = -30.5). Within a budget of about 1,000 iterations
that drive either never reaches the target or reaches it in lockstep for every component. Here
the per-component thresholds are learned as above, and a *common* lift is added to all of them
whenever the overall sparsity falls below a cubic ramp (Zhu & Gupta 2017) that reaches the
target at ``ramp`` (default 60%) of the steps; the differences between components stay learned.
Each component's initial s (configurable) prunes a twentieth of the target among its own
weights, so components of different weight scales (a pretrained backbone, fresh heads) start
alike. If weights cross the frozen
thresholds after the stop, one final common shift lands the sparsity on the target
(``info["final_shift"]``).

Granularity (not in the paper; ``element`` is the paper's): with ``block:RxC`` each r x c block
of a weight (seen as out x in*kh*kw) is shrunk as one, w' = w * relu(rms_b - t) / rms_b with
rms_b the block's root mean square (Eq. 2 is the 1 x 1 case), so the masks are whole blocks the
BSR kernel runs fast; the thresholds, their lift and the stop are unchanged. With ``N:M`` the
pattern fixes every layer's sparsity, leaving the component thresholds nothing to allocate:
every group of M input channels is shrunk at its (N+1)-th largest magnitude, the co-training
with adaptive task weights is unchanged, and weights whose input channels are not whole groups
of M stay dense (as with every N:M method here).

Usage::

    pruner = AdapMTLPruner(train_steps=1000, init_threshold=-6.0)
    masks = pruner.prune(ctx, 0.9)          # trains ctx.model; masks.info["component_sparsity"]
"""

from __future__ import annotations

import collections
import math
from collections.abc import Mapping, Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from edgeprune.masks import ELEMENT, Granularity, MaskSet, fitting
from edgeprune.prune.context import PruneContext
from edgeprune.prune.policy import expand_groups, group_scores, nm_fits, score_granularity
from edgeprune.workload.base import repeat_batches

TOLERANCE = 0.002


def soft_threshold(w: Tensor, s: Tensor, gran: Granularity = ELEMENT) -> Tensor:
    """w' = sign(w) * relu(|w| - sigmoid(s))  (AdapMTL Eq. 2); per block or N:M group for the
    other granularities (see the module's docstring)."""
    if gran.kind == "nm":
        return _nm_shrink(w, gran)
    if gran.kind == "block":
        rms = magnitude(w, gran)
        return w * F.relu(rms - torch.sigmoid(s)) / rms.clamp_min(1e-30)
    return torch.sign(w) * F.relu(w.abs() - torch.sigmoid(s))


def magnitude(w: Tensor, gran: Granularity) -> Tensor:
    """What a threshold is compared with, per weight: |w|, or its block's root mean square."""
    if gran.kind != "block":
        return w.abs()
    # clamped: an all-zero block (an already pruned model) has rms 0, where sqrt's gradient is inf
    return expand_groups(group_scores(w * w, gran)[0].clamp_min(1e-30).sqrt(), w.shape, gran)


def _nm_shrink(w: Tensor, gran: Granularity) -> Tensor:
    """Every group of M input channels shrunk by its (N+1)-th largest magnitude: N stay."""
    if not nm_fits(w.shape, gran.b):
        return w
    moved = w.movedim(1, -1)
    groups = moved.reshape(-1, gran.b)
    cut = torch.topk(groups.detach().abs(), gran.a + 1, dim=1).values[:, -1:]
    shrunk = torch.sign(groups) * F.relu(groups.abs() - cut)
    return shrunk.reshape(moved.shape).movedim(-1, 1)


class AdaptiveTaskWeights:
    """Loss weights from the relative loss change over a sliding window (AdapMTL Sec. 3.3).

    Usage::

        weights = AdaptiveTaskWeights(["seg", "depth"], window=500, warmup=100)
        w = weights.update({"seg": 0.8, "depth": 0.3})   # {"seg": 1.0, "depth": 1.0} until warm
    """

    def __init__(self, tasks: Sequence[str], window: int = 500, warmup: int = 0) -> None:
        self.tasks, self.warmup = list(tasks), warmup
        self.history: dict[str, collections.deque[float]] = {t: collections.deque(maxlen=window) for t in tasks}
        self.previous: dict[str, float] = {}
        self.step = 0

    def update(self, losses: dict[str, float]) -> dict[str, float]:
        """Record this iteration's losses; return the weights for the next iteration."""
        self.step += 1
        if self.step > self.warmup:
            for t in self.tasks:
                if t in self.previous and losses[t] > 0:
                    self.history[t].append(abs(self.previous[t] - losses[t]) / losses[t])
        self.previous = dict(losses)
        return self.weights()

    def weights(self) -> dict[str, float]:
        means = {t: sum(h) / len(h) for t, h in self.history.items() if h}
        if len(means) < len(self.tasks) or sum(means.values()) <= 0:
            return dict.fromkeys(self.tasks, 1.0)
        total = sum(means.values())
        return {t: len(self.tasks) * v / total for t, v in means.items()}


class AdapMTLPruner:
    """Soft-threshold co-optimisation with component-wise thresholds and adaptive task weights."""

    def __init__(self, train_steps: int = 1000, train_batch_size: int = 16, train_lr: float = 1e-4,
                 threshold_lr: float = 2e-3, threshold_decay: float = 0.0, init_threshold: float | None = None,
                 window: int = 500, warmup: int = 100, ramp: float = 0.6,
                 from_scratch: bool = False, granularity: str = "element") -> None:  # fmt: skip
        self.granularity = score_granularity(granularity, "adapmtl")
        self.steps, self.batch_size, self.lr = train_steps, train_batch_size, train_lr
        self.threshold_lr, self.threshold_decay, self.init_threshold = threshold_lr, threshold_decay, init_threshold
        self.window, self.warmup, self.ramp, self.from_scratch = window, warmup, ramp, from_scratch

    @staticmethod
    def sparsity(mags: Mapping[str, Tensor], comp_of: dict[str, str], s: Mapping[str, Tensor]) -> float:
        """Overall share of exact zeros of w' (parameter-count weighted over components), from
        each weight's :func:`magnitude`."""
        zeros = sum(int((m <= torch.sigmoid(s[comp_of[n]].detach())).sum()) for n, m in mags.items())
        return zeros / sum(m.numel() for m in mags.values())

    def prune(self, ctx: PruneContext, sparsity: float) -> MaskSet:
        model = ctx.model
        if self.from_scratch:
            for module in model.modules():
                reset = getattr(module, "reset_parameters", None)
                if callable(reset):
                    reset()
        comp_of = {n: ctx.graph.component_of(n) for n in ctx.params}
        grans = {n: fitting(self.granularity, p.shape) for n, p in ctx.params.items()}
        fixed = self.granularity.kind == "nm"  # the pattern sets the sparsity: no threshold moves
        mags = self._magnitudes(ctx.params, grans)
        s = {c: nn.Parameter(torch.tensor(-40.0 if fixed else self._initial_threshold(
                 [m for n, m in mags.items() if comp_of[n] == c], sparsity)), requires_grad=not fixed)
             for c in sorted(set(comp_of.values()))}  # fmt: skip
        weights_opt = torch.optim.Adam(model.parameters(), lr=self.lr, betas=(0.5, 0.999))
        threshold_opt = torch.optim.Adam(s.values(), lr=self.threshold_lr, weight_decay=self.threshold_decay)
        task_weights = AdaptiveTaskWeights(ctx.tasks, self.window, self.warmup)
        lam = dict.fromkeys(ctx.tasks, 1.0)
        start = self.sparsity(mags, comp_of, s)
        ramp = max(1, round(self.ramp * self.steps))
        stopped_at: int | None = 0 if fixed else None
        model.train()
        for step, (x, y) in enumerate(repeat_batches(ctx.workload, "train", self.batch_size, self.steps,
                                                     tasks=ctx.tasks, seed=ctx.seed), 1):  # fmt: skip
            effective = {n: soft_threshold(p, s[comp_of[n]], grans[n]) for n, p in ctx.params.items()}
            losses = ctx.workload.task_losses(functional_call(model, effective, (x,)), y)
            loss = cast(Tensor, sum(lam[t] * losses[t] for t in ctx.tasks))
            weights_opt.zero_grad()
            threshold_opt.zero_grad()
            loss.backward()
            weights_opt.step()
            if stopped_at is None:
                threshold_opt.step()
                floor = start + (sparsity - start) * (1 - (1 - min(step, ramp) / ramp) ** 3)
                mags = self._magnitudes(ctx.params, grans)
                self._raise_to(mags, comp_of, s, floor)
                if self.sparsity(mags, comp_of, s) >= sparsity - TOLERANCE / 2:
                    stopped_at = step  # the thresholds stop; the weights keep training
                    for p in s.values():
                        p.requires_grad_(False)
            lam = task_weights.update({t: v.item() for t, v in losses.items()})
        model.eval()
        # Weights that crossed a frozen threshold after the stop move the sparsity a little;
        # one common shift of the thresholds (0 if within tolerance) lands it on the target.
        offset = 0.0
        mags = self._magnitudes(ctx.params, grans)
        if not fixed and abs(self.sparsity(mags, comp_of, s) - sparsity) > TOLERANCE:
            offset = self._common_shift(mags, comp_of, s, sparsity)
        with torch.no_grad():
            masks = {}
            for n, p in ctx.params.items():
                p.copy_(soft_threshold(p, s[comp_of[n]] + offset, grans[n]))
                masks[n] = p != 0
        per_comp: dict[str, list[int]] = {}
        for n, m in masks.items():
            acc = per_comp.setdefault(comp_of[n], [0, 0])
            acc[0] += int((~m).sum())
            acc[1] += m.numel()
        info: dict[str, object] = {
            "component_sparsity": {c: z / t for c, (z, t) in per_comp.items()},
            "thresholds": None if fixed else {c: float(torch.sigmoid(v.detach() + offset)) for c, v in s.items()},
            "stopped_at_step": stopped_at, "final_shift": offset, "final_task_weights": lam,
            "granularity": str(self.granularity),
        }  # fmt: skip
        return MaskSet(masks, default=self.granularity, info=info)

    @staticmethod
    def _magnitudes(params: Mapping[str, Tensor], grans: Mapping[str, Granularity]) -> dict[str, Tensor]:
        return {n: magnitude(p.detach(), grans[n]) for n, p in params.items()}

    def _initial_threshold(self, component: Sequence[Tensor], target: float) -> float:
        """The given initial s, else the one whose sigmoid prunes a twentieth of the target
        among one component's weights (their :func:`magnitude` s: each component starts from
        its own weight scale, and since sigmoid(s) ~ e^s there, a common lift scales every
        threshold by one factor)."""
        if self.init_threshold is not None:
            return float(self.init_threshold)
        mags = torch.cat([m.reshape(-1) for m in component])
        sample = mags[torch.randperm(len(mags), generator=torch.Generator().manual_seed(0))[:200_000]]
        v = float(torch.quantile(sample, target / 20).clamp(1e-8, 0.5))
        return math.log(v / (1 - v))

    def _common_shift(self, mags: Mapping[str, Tensor], comp_of: dict[str, str], s: Mapping[str, Tensor],
                      target: float, lo: float = -40.0) -> float:  # fmt: skip
        """The smallest shift added to every s_c (bisection) that reaches ``target``."""

        def at(shift: float) -> float:
            return self.sparsity(mags, comp_of, {c: v.detach() + shift for c, v in s.items()})

        hi = 40.0
        for _ in range(40):
            mid = (lo + hi) / 2
            if at(mid) < target:
                lo = mid
            else:
                hi = mid
        return hi

    def _raise_to(self, mags: Mapping[str, Tensor], comp_of: dict[str, str], s: Mapping[str, Tensor],
                  floor: float) -> None:  # fmt: skip
        """Lift every threshold by one common amount if the sparsity is below the ramp."""
        if self.sparsity(mags, comp_of, s) >= floor:
            return
        shift = self._common_shift(mags, comp_of, s, floor, lo=0.0)
        with torch.no_grad():
            for v in s.values():
                v.add_(shift)
