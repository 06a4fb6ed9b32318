"""Baseline pruners: random, magnitude (layer-wise or global; element, block or channel),
N:M (2:4) and L1 filter. Each is one importance criterion plus one policy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgeprune.masks import Granularity, MaskSet
from edgeprune.prune.context import PruneContext
from edgeprune.prune.importance import Importance, MagnitudeImportance, RandomImportance
from edgeprune.prune.latency import LatencyAllocation, latency_allocation, refine
from edgeprune.prune.policy import allocate


class ScorePruner:
    """Score every weight with ``importance``, then keep the best groups by ``policy``.

    Usage::

        pruner = ScorePruner(MagnitudeImportance(), Granularity.parse("block:4x1"), scope="global")
        masks = pruner.prune(ctx, 0.9)
    """

    def __init__(self, importance: Importance, granularity: Granularity, scope: str = "layer",
                 latency: LatencyAllocation | None = None) -> None:  # fmt: skip
        self.importance, self.granularity, self.scope, self.latency = importance, granularity, scope, latency

    def prune(self, ctx: PruneContext, sparsity: float) -> MaskSet:
        scores = self.importance.scores(ctx)
        # Whole filters of an output layer are whole task outputs (a class, the depth map).
        keep = ctx.output_layers if self.granularity.kind == "channel" else frozenset()
        masks = allocate(scores, sparsity, self.granularity, self.scope, keep)
        if self.latency is None:
            return MaskSet(masks, default=self.granularity)
        # per-layer sparsities for the lowest predicted latency, around the policy's own
        masks, info = refine(self.latency, ctx, scores, sparsity, self.granularity, masks)
        return MaskSet(masks, default=self.granularity, info=info)


class LayerNormalised:
    """Divide each layer's scores by their mean, so ``global`` ranking compares layers of
    different fan-in on one scale (used by the L1-filter baseline)."""

    def __init__(self, inner: Importance) -> None:
        self.inner = inner

    def scores(self, ctx: PruneContext) -> dict:
        return {n: s / s.mean().clamp_min(1e-12) for n, s in self.inner.scores(ctx).items()}


def random_pruner(granularity: str, scope: str, seed: int, allocate: str = "method", target: str = "host",
                  input_size: str | None = None) -> ScorePruner:  # fmt: skip
    """Method ``random``: seeded random scores, kept by policy (or ``allocate`` ``latency``)."""
    gran = Granularity.parse(granularity)
    return ScorePruner(RandomImportance(seed), gran, scope, latency_allocation(allocate, target, gran, input_size))


def magnitude_pruner(granularity: str, scope: str, allocate: str = "method", target: str = "host",
                     input_size: str | None = None) -> ScorePruner:  # fmt: skip
    """Method ``magnitude``: |w|, layer-wise or global (or ``allocate`` ``latency``)."""
    gran = Granularity.parse(granularity)
    return ScorePruner(MagnitudeImportance(), gran, scope, latency_allocation(allocate, target, gran, input_size))


def nm_pruner(pattern: str) -> ScorePruner:
    """Method ``nm``: N:M magnitude along input channels."""
    return ScorePruner(MagnitudeImportance(), Granularity.parse(pattern))


def nm_sparsity(options: Mapping[str, Any]) -> float | None:
    """The sparsity method ``nm``'s pattern fixes (2:4 -> 0.5)."""
    return Granularity.parse(options["pattern"]).implied_sparsity


def l1_filter_pruner(scope: str) -> ScorePruner:
    """Method ``l1-filter``: whole filters by L1 norm, normalised per layer."""
    return ScorePruner(LayerNormalised(MagnitudeImportance()), Granularity("channel"), scope)
