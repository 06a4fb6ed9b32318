"""Baseline pruners: random, magnitude (layer-wise or global; element, block or channel),
N:M (2:4) and L1 filter. Each is one importance criterion plus one policy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgeprune.masks import Granularity, MaskSet
from edgeprune.prune.base import MethodSpec, register
from edgeprune.prune.context import PruneContext
from edgeprune.prune.importance import Importance, MagnitudeImportance, RandomImportance
from edgeprune.prune.policy import allocate


class ScorePruner:
    """Score every weight with ``importance``, then keep the best groups by ``policy``.

    Usage::

        pruner = ScorePruner(MagnitudeImportance(), Granularity.parse("block:4x1"), scope="global")
        masks = pruner.prune(ctx, 0.9)
    """

    def __init__(self, importance: Importance, granularity: Granularity, scope: str = "layer") -> None:
        self.importance, self.granularity, self.scope = importance, granularity, scope

    def prune(self, ctx: PruneContext, sparsity: float) -> MaskSet:
        scores = self.importance.scores(ctx)
        # Whole filters of an output layer are whole task outputs (a class, the depth map).
        keep = ctx.output_layers if self.granularity.kind == "channel" else frozenset()
        return MaskSet(allocate(scores, sparsity, self.granularity, self.scope, keep), default=self.granularity)


class LayerNormalised:
    """Divide each layer's scores by their mean, so ``global`` ranking compares layers of
    different fan-in on one scale (used by the L1-filter baseline)."""

    def __init__(self, inner: Importance) -> None:
        self.inner = inner

    def scores(self, ctx: PruneContext) -> dict:
        return {n: s / s.mean().clamp_min(1e-12) for n, s in self.inner.scores(ctx).items()}


def _nm_sparsity(opts: Mapping[str, Any]) -> float | None:
    return Granularity.parse(opts["pattern"]).implied_sparsity


register(MethodSpec(
    "random", "random scores (seeded), kept by policy", {"granularity": "element", "scope": "layer", "seed": 0},
    lambda granularity, scope, seed: ScorePruner(RandomImportance(seed), Granularity.parse(granularity), scope),
))  # fmt: skip
register(MethodSpec(
    "magnitude", "|w| (Han et al. 2015), layer-wise or global", {"granularity": "element", "scope": "layer"},
    lambda granularity, scope: ScorePruner(MagnitudeImportance(), Granularity.parse(granularity), scope),
))  # fmt: skip
register(MethodSpec(
    "nm", "N:M magnitude (default 2:4) along input channels, for sparse tensor cores", {"pattern": "2:4"},
    lambda pattern: ScorePruner(MagnitudeImportance(), Granularity.parse(pattern)),
    fixed_sparsity=_nm_sparsity,
))  # fmt: skip
register(MethodSpec(
    "l1-filter", "whole filters by L1 norm (Li et al., ICLR 2017), the same share per layer", {"scope": "layer"},
    lambda scope: ScorePruner(LayerNormalised(MagnitudeImportance()), Granularity("channel"), scope),
))  # fmt: skip
