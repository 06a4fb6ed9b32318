"""Mask policies: how importance scores become keep-masks at a requested sparsity.

Two steps. *Grouping* by granularity: an element, an r x c block of the weight seen as
out x (in*kh*kw), a whole output filter, or N:M groups along the input channels. *Allocation*:
``layer`` keeps the top (1 - s) of each layer; ``global`` ranks every group of every layer on
one scale. Either way each layer keeps at least its best group, so no layer is cut off. Both count
weights, not groups, so the overall sparsity lands within one group of the target.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from edgeprune.errors import UserError
from edgeprune.masks import Granularity


def _as_matrix(t: Tensor) -> Tensor:
    """A weight as out x (in*kh*kw)."""
    return t.reshape(t.shape[0], -1)


def group_scores(score: Tensor, gran: Granularity) -> tuple[Tensor, Tensor]:
    """Per-group summed score and per-group weight count (flattened)."""
    if gran.kind == "element":
        return score.reshape(-1), torch.ones(score.numel())
    if gran.kind == "channel":
        mat = _as_matrix(score)
        return mat.sum(dim=1), torch.full((mat.shape[0],), float(mat.shape[1]))
    if gran.kind == "block":
        mat = _as_matrix(score)
        r, c = gran.a, gran.b
        pad_r, pad_c = -mat.shape[0] % r, -mat.shape[1] % c
        padded = torch.nn.functional.pad(mat, (0, pad_c, 0, pad_r))
        ones = torch.nn.functional.pad(torch.ones_like(mat), (0, pad_c, 0, pad_r))

        def blocks(x: Tensor) -> Tensor:
            rows, cols = x.shape[0] // r, x.shape[1] // c
            return x.reshape(rows, r, cols, c).sum(dim=(1, 3)).reshape(-1)

        sizes = blocks(ones)
        return blocks(padded) / sizes, sizes  # mean score: ragged edge blocks compete fairly
    raise UserError(f"granularity {gran} is not an allocation granularity")


def score_granularity(text: str, method: str) -> Granularity:
    """The ``--granularity`` of a method that ranks its own scores (CUT, AdapMTL, SNIP, IMP):
    ``element``, ``block:RxC`` (the blocks the BSR kernel runs fast, each ranked by its mean
    score) or ``N:M`` (the N best of every M along the input channels)."""
    gran = Granularity.parse(text)
    if gran.kind not in ("element", "block", "nm"):
        raise UserError(f"--granularity {text}: {method} takes element, block:RxC or N:M")
    return gran


def granularity_sparsity(options: Mapping[str, Any]) -> float | None:
    """The sparsity a method's ``granularity`` option fixes (N:M: 1 - N/M), else ``None``."""
    return Granularity.parse(str(options.get("granularity", "element"))).implied_sparsity


def nm_fits(shape: torch.Size, m: int) -> bool:
    """Whether a weight of ``shape`` has input channels in whole groups of ``m`` (N:M applies;
    other weights stay dense under an N:M granularity)."""
    return len(shape) >= 2 and shape[1] % m == 0


def expand_groups(keep: Tensor, shape: torch.Size, gran: Granularity) -> Tensor:
    """Turn a per-group keep vector back into an element mask of ``shape``."""
    if gran.kind == "element":
        return keep.reshape(shape)
    rows, cols = shape[0], int(torch.Size(shape[1:]).numel())
    if gran.kind == "channel":
        return keep[:, None].expand(rows, cols).reshape(shape)
    r, c = gran.a, gran.b
    br, bc = -(-rows // r), -(-cols // c)
    full = keep.reshape(br, bc).repeat_interleave(r, 0).repeat_interleave(c, 1)
    return full[:rows, :cols].reshape(shape)


def _keep_top(scores: Tensor, sizes: Tensor, keep_weights: float, protect: Tensor | None = None) -> Tensor:
    """Keep the best groups until ``keep_weights`` weights are kept (nearest group boundary)."""
    ranked = scores.clone()
    if protect is not None:
        ranked[protect] = float("inf")
    order = torch.argsort(ranked, descending=True, stable=True)
    cum = torch.cumsum(sizes[order], 0)
    keep_sorted = (cum - sizes[order] / 2) < keep_weights
    keep = torch.zeros_like(scores, dtype=torch.bool)
    keep[order[keep_sorted]] = True
    if protect is not None:
        keep |= protect
    return keep


def _apportion(grouped: Mapping[str, tuple[Tensor, Tensor]], sparsity: float | Mapping[str, float]
               ) -> dict[str, Tensor]:  # fmt: skip
    """Layer-wise keep: every layer keeps its best groups up to its own share (1 - s) of its
    weights (``s`` the one sparsity, or the layer's own from a mapping); the budget left by
    rounding down goes one group at a time to the layers with the largest fractional remainder
    (Hamilton apportionment), so every layer stays within one group of its share and the total
    within about half a small group of the target. Every
    layer keeps at least its best group."""
    state: dict[str, list[Any]] = {}  # name -> [order, cumulative sizes, groups kept, share]
    left = 0.0
    for n, (g, z) in grouped.items():
        order = torch.argsort(g, descending=True, stable=True)
        cum = torch.cumsum(z[order], 0)
        layer_sparsity = sparsity[n] if isinstance(sparsity, Mapping) else sparsity
        share = (1 - layer_sparsity) * float(z.sum())
        k = max(1, int((cum <= share + 1e-9).sum()))
        left += share - float(cum[k - 1])
        state[n] = [order, cum, k, share]
    def fraction(n: str) -> float:
        order, cum, k, share = state[n]
        return (share - float(cum[k - 1])) / float(grouped[n][1][order[k]])

    by_remainder = sorted((n for n in state if state[n][2] < len(state[n][0])), key=lambda n: -fraction(n))
    for n in by_remainder:
        order, cum, k, _ = state[n]
        size = float(grouped[n][1][order[k]])
        if size / 2 < left:
            state[n][2] = k + 1
            left -= size
    out = {}
    for n, (order, _, k, _) in state.items():
        keep = torch.zeros(len(order), dtype=torch.bool)
        keep[order[:k]] = True
        out[n] = keep
    return out


def allocate(
    scores: Mapping[str, Tensor],
    sparsity: float,
    gran: Granularity,
    scope: str = "layer",
    keep_whole: frozenset[str] = frozenset(),
    per_layer: Mapping[str, float] | None = None,
) -> dict[str, Tensor]:
    """Keep-masks meeting ``sparsity`` at granularity ``gran`` with ``scope`` ``layer`` or
    ``global``. Layers in ``keep_whole`` stay dense and the others prune more to meet the
    overall target. ``per_layer`` (a latency-aware allocation) gives each layer its own
    sparsity instead; each keeps its best groups."""
    if gran.kind == "nm":
        return nm_masks(scores, gran)
    fixed = {n for n in scores if n in keep_whole} if per_layer is None else set()
    if fixed:
        total = sum(s.numel() for s in scores.values())
        rest = total - sum(scores[n].numel() for n in fixed)
        if rest <= 0 or sparsity * total >= rest:
            raise UserError(f"sparsity {sparsity:g} cannot be met without pruning the output layers")
        inner = allocate({n: s for n, s in scores.items() if n not in fixed}, sparsity * total / rest, gran, scope)
        return {n: inner[n] if n in inner else torch.ones_like(s, dtype=torch.bool) for n, s in scores.items()}
    grouped = {n: group_scores(s, gran) for n, s in scores.items()}
    if per_layer is not None or scope == "layer":
        shares = sparsity if per_layer is None else per_layer
        return {n: expand_groups(k, scores[n].shape, gran) for n, k in _apportion(grouped, shares).items()}
    if scope != "global":
        raise UserError(f"unknown scope '{scope}'; use layer or global")
    names = list(grouped)
    all_scores = torch.cat([grouped[n][0] for n in names])
    all_sizes = torch.cat([grouped[n][1] for n in names])
    protect = torch.zeros_like(all_scores, dtype=torch.bool)
    start = 0
    for n in names:
        g = grouped[n][0]
        protect[start + int(torch.argmax(g))] = True
        start += len(g)
    keep = _keep_top(all_scores, all_sizes, (1 - sparsity) * all_sizes.sum().item(), protect)
    out, start = {}, 0
    for n in names:
        count = len(grouped[n][0])
        out[n] = expand_groups(keep[start : start + count], scores[n].shape, gran)
        start += count
    return out


def nm_masks(scores: Mapping[str, Tensor], gran: Granularity) -> dict[str, Tensor]:
    """N:M masks: in every M consecutive input channels (at each output channel and kernel
    position) the N best weights are kept, the layout sparse tensor cores accelerate (NVIDIA
    Ampere 2:4). Layers whose input channels are not a multiple of M stay dense."""
    n, m = gran.a, gran.b
    out = {}
    for name, s in scores.items():
        if not nm_fits(s.shape, m):
            out[name] = torch.ones_like(s, dtype=torch.bool)
            continue
        moved = s.movedim(1, -1)  # out, kh, kw, in
        groups = moved.reshape(-1, m)
        top = torch.topk(groups, n, dim=1).indices
        keep = torch.zeros_like(groups, dtype=torch.bool).scatter_(1, top, True)
        out[name] = keep.reshape(moved.shape).movedim(-1, 1).contiguous()
    return out
