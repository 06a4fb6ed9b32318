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
