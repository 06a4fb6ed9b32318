"""Fusing per-task keep-masks of shared parameters (CUT, arXiv 2504.09803, Sec. 3.2).

Each task proposes a keep-mask for every parameter it reaches. A parameter reached by one task
keeps that task's mask; one reached by several is kept by ``or`` (any task keeps it), ``and``
(every task keeps it) or ``vote`` (at least ``vote_min`` of the tasks reaching it keep it; by
default a strict majority).

With a fixed pattern (N:M) there is no keep ratio to search: :func:`fused_rank` gives each
weight the smallest ratio at which the fusion keeps it, an order the pattern then keeps the
best of.

Usage::

    fused = fuse({"seg": m_seg, "depth": m_depth}, "or")
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from edgeprune.errors import UserError

FUSIONS = ("or", "and", "vote")


def fuse(masks: Mapping[str, Tensor], how: str, vote_min: int | None = None) -> Tensor:
    """Fuse the keep-masks proposed by the tasks that reach one parameter."""
    if not masks:
        raise ValueError("no task proposes a mask")
    stacked = torch.stack([m.bool() for m in masks.values()])
    if len(masks) == 1:
        return stacked[0]
    if how == "or":
        return stacked.any(dim=0)
    if how == "and":
        return stacked.all(dim=0)
    if how == "vote":
        return stacked.sum(dim=0) >= _votes_needed(len(masks), vote_min)  # a fresh tensor: no mask is modified
    raise UserError(f"unknown fusion '{how}'; use {', '.join(FUSIONS)}")


def _votes_needed(tasks: int, vote_min: int | None) -> int:
    return tasks // 2 + 1 if vote_min is None else min(vote_min, tasks)


def fused_rank(ranks: Mapping[str, Tensor], how: str, vote_min: int | None = None) -> Tensor:
    """Per weight, the fusion's order: ``fuse({t: ranks[t] < r}, how)`` equals
    ``fused_rank(ranks, how) < r`` for every ratio ``r``. ``ranks`` are each task's ranks of the
    weights normalised to [0, 1) (0 = most important)."""
    if not ranks:
        raise ValueError("no task ranks the weights")
    stacked = torch.stack([r.float() for r in ranks.values()])
    if how == "or":  # kept once any task keeps it
        return stacked.min(dim=0).values
    if how == "and":  # kept once every task keeps it
        return stacked.max(dim=0).values
    if how == "vote":  # kept once the needed number of tasks keep it
        return stacked.sort(dim=0).values[_votes_needed(len(ranks), vote_min) - 1]
    raise UserError(f"unknown fusion '{how}'; use {', '.join(FUSIONS)}")
