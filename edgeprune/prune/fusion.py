"""Fusing per-task keep-masks of shared parameters (CUT, arXiv 2504.09803, Sec. 3.2).

Each task proposes a keep-mask for every parameter it reaches. A parameter reached by one task
keeps that task's mask; one reached by several is kept by ``or`` (any task keeps it), ``and``
(every task keeps it) or ``vote`` (at least ``vote_min`` of the tasks reaching it keep it; by
default a strict majority).

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
        need = len(masks) // 2 + 1 if vote_min is None else min(vote_min, len(masks))
        return stacked.sum(dim=0) >= need  # a fresh tensor: no task's mask is modified
    raise UserError(f"unknown fusion '{how}'; use {', '.join(FUSIONS)}")
