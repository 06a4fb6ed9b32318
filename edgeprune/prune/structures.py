"""Prunable structures for structured pruning: a filter, an MLP node or an attention head, each
spanning slices of one or more weight tensors.

Modules may declare their own structures with ``structures(prefix) -> [(id, parts)]`` (the
attention heads and MLP nodes of :mod:`edgeprune.models.pool`); every other prunable weight
contributes one structure per output row (a conv filter or a linear node).

Usage::

    found = find_structures(model, params)      # [Structure("backbone.0.weight#3", ...), ...]
    masks = structure_masks(params, found, keep={"backbone.0.weight#3", ...})
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

import torch
from torch import Tensor, nn

Part = tuple[str, int, int, int]  # (parameter, dim, start, stop)


@dataclasses.dataclass(frozen=True)
class Structure:
    id: str
    parts: tuple[Part, ...]
    size: int


def find_structures(model: nn.Module, params: Mapping[str, Tensor]) -> list[Structure]:
    """Declared structures first, then one per output row of each remaining prunable weight."""
    found: list[Structure] = []
    covered: set[str] = set()
    for name, module in model.named_modules():
        declare = getattr(module, "structures", None)
        if not callable(declare):
            continue
        for sid, parts in declare(name):
            if all(p[0] in params for p in parts):
                size = sum((p[3] - p[2]) * params[p[0]].numel() // params[p[0]].shape[p[1]] for p in parts)
                found.append(Structure(sid, tuple(parts), size))
                covered.update(p[0] for p in parts)
    for pname, w in params.items():
        if pname in covered:
            continue
        row = w.numel() // w.shape[0]
        found.extend(Structure(f"{pname}#{i}", ((pname, 0, i, i + 1),), row) for i in range(w.shape[0]))
    return found


def structure_scores(scores: Mapping[str, Tensor], structures: Iterable[Structure]) -> dict[str, float]:
    """Sum of element scores over each structure."""
    out = {}
    for s in structures:
        out[s.id] = float(sum(scores[p].narrow(d, a, b - a).sum() for p, d, a, b in s.parts))
    return out


def structure_masks(params: Mapping[str, Tensor], structures: Iterable[Structure], keep: set[str]) -> dict[str, Tensor]:
    """Element keep-masks: everything kept except the structures not in ``keep``."""
    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in params.items()}
    for s in structures:
        if s.id not in keep:
            for p, d, a, b in s.parts:
                masks[p].narrow(d, a, b - a).fill_(False)
    return masks


def select_structures(scores: Mapping[str, float], structures: list[Structure], total: int, sparsity: float,
                      group_of: Mapping[str, str] | None = None) -> set[str]:  # fmt: skip
    """Keep the best-scoring structures until (1 - sparsity) of ``total`` weights are kept,
    always keeping structures without a score and the best one of each group (layer), so no
    layer is cut off. Scores are normalised by their group's mean first."""
    groups = group_of or {s.id: s.parts[0][0] for s in structures}
    by_group: dict[str, list[float]] = {}
    for s in structures:
        if s.id in scores:
            by_group.setdefault(groups[s.id], []).append(scores[s.id])
    mean = {g: (sum(v) / len(v)) or 1.0 for g, v in by_group.items()}
    unscored = [s for s in structures if s.id not in scores]
    keep = {s.id for s in unscored}
    budget = (1 - sparsity) * total - sum(s.size for s in unscored) - (total - sum(s.size for s in structures))
    ranked = sorted((s for s in structures if s.id in scores), key=lambda s: -scores[s.id] / mean[groups[s.id]])
    best_of_group: dict[str, Structure] = {}
    for s in ranked:
        best_of_group.setdefault(groups[s.id], s)
    for s in best_of_group.values():
        keep.add(s.id)
        budget -= s.size
    for s in ranked:
        if s.id in keep:
            continue
        if budget - s.size / 2 < 0:
            break
        keep.add(s.id)
        budget -= s.size
    return keep
