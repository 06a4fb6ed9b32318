"""Prunable structures for structured pruning: a filter, an MLP node or an attention head, each
spanning slices of one or more weight tensors.

A model may declare all its structures with ``structures(prefix) -> [(id, parts)]`` on its root
module (the pool CNN couples each filter with the next layer's input slice; the pool ViT lists
attention heads and MLP nodes); then nothing else is a structure. Otherwise submodules may
declare theirs, and every other prunable weight contributes one structure per output row (a
conv filter or a linear node). Read structures from the source model, not a ``torch.fx``
extraction (tracing drops custom methods); parts whose tensor the extraction dropped (another
task's head) are left out.

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


def _declared(params: Mapping[str, Tensor], declared: list[tuple[str, list[Part]]]) -> list[Structure]:
    found = []
    for sid, all_parts in declared:
        parts = tuple(p for p in all_parts if p[0] in params)
        if parts:
            size = sum((p[3] - p[2]) * params[p[0]].numel() // params[p[0]].shape[p[1]] for p in parts)
            found.append(Structure(sid, parts, size))
    return found


def find_structures(model: nn.Module, params: Mapping[str, Tensor]) -> list[Structure]:
    """The root's declared structures if it declares them; else the submodules' declared
    structures, then one per output row of each remaining prunable weight."""
    declared = getattr(model, "structures", None)
    if callable(declared):
        return _declared(params, declared(""))
    found: list[Structure] = []
    for name, module in model.named_modules():
        if name and callable(getattr(module, "structures", None)):
            found += _declared(params, module.structures(name))
    covered = {p[0] for s in found for p in s.parts}
    for pname, w in params.items():
        if pname in covered:
            continue
        row = w.numel() // w.shape[0]
        found.extend(Structure(f"{pname}#{i}", ((pname, 0, i, i + 1),), row) for i in range(w.shape[0]))
    return found


def structure_masks(params: Mapping[str, Tensor], structures: Iterable[Structure], keep: set[str]) -> dict[str, Tensor]:
    """Element keep-masks: everything kept except the structures not in ``keep``."""
    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in params.items()}
    for s in structures:
        if s.id not in keep:
            for p, d, a, b in s.parts:
                masks[p].narrow(d, a, b - a).fill_(False)
    return masks


def select_structures(scores: Mapping[str, float], structures: list[Structure], params: Mapping[str, Tensor],
                      sparsity: float) -> set[str]:  # fmt: skip
    """Remove the lowest-scoring structures until ``sparsity`` of the prunable weights are zero.

    Scores are normalised by the mean of their layer (the tensor of their first part). Removal
    is counted on the real masks, so structures that overlap (a filter's row and the next
    layer's input slice) are not counted twice. Structures without a score stay, and so does
    the best structure of each layer, so no layer is cut off. A structure whose removal would
    overshoot the target by more than stopping short is skipped for a smaller one."""
    group = {s.id: s.parts[0][0] for s in structures}
    by_group: dict[str, list[float]] = {}
    for s in structures:
        if s.id in scores:
            by_group.setdefault(group[s.id], []).append(scores[s.id])
    mean = {g: (sum(v) / len(v)) or 1.0 for g, v in by_group.items()}
    ranked = sorted((s for s in structures if s.id in scores), key=lambda s: scores[s.id] / mean[group[s.id]])
    protected: dict[str, str] = {}
    for s in reversed(ranked):
        protected.setdefault(group[s.id], s.id)
    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in params.items()}
    total = sum(p.numel() for p in params.values())
    want, zeros = sparsity * total, 0
    removed: set[str] = set()
    for s in ranked:
        if zeros >= want:
            break
        if s.id in protected.values():
            continue
        gain = sum(int(masks[p].narrow(d, a, b - a).sum()) for p, d, a, b in s.parts)
        if zeros + gain - want > want - zeros:
            continue
        for p, d, a, b in s.parts:
            masks[p].narrow(d, a, b - a).fill_(False)
        zeros += gain
        removed.add(s.id)
    return {s.id for s in structures} - removed
