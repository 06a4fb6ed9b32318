"""Per-layer format choice: the format the calibrated cost model predicts fastest, or the one
the user forces with ``--format-policy``. A forced format a layer cannot take (N:M on a layer
that is not N:M sparse, blocks that do not tile it) leaves that layer dense, with the reason.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from edgeprune.contracts.manifest import LayerRecord
from edgeprune.costmodel.table import CostTable, LayerShape, conv_shape, layer_kind
from edgeprune.errors import UserError
from edgeprune.export.sites import ConvSite
from edgeprune.formats.compressed import Compressed, as_matrix, bsr_fits, is_nm, to_bsr, to_csr, to_nm
from edgeprune.formats.shrunk import Shrunk, shrink

# predicted ratio to dense, how to build the weight in the format, block shape, N:M pattern
Candidate = tuple[float | None, Callable[[], Compressed | Shrunk | None], list[int] | None, list[int] | None]
POLICIES = ("auto", "dense", "csr", "bsr", "nm", "shrunk")
DEFAULT_BLOCKS = ((4, 1), (8, 1))
DEFAULT_NM = ((2, 4),)


def block_density(w: np.ndarray, r: int, c: int) -> float:
    m = as_matrix(w)
    blocks = np.abs(m.reshape(m.shape[0] // r, r, m.shape[1] // c, c)).sum(axis=(1, 3))
    return float(np.count_nonzero(blocks)) / blocks.size


def site_shape(site: ConvSite, input_shape: list[int]) -> LayerShape | None:
    """The layer's multiply-adds and output width at ``input_shape`` (N, C, H, W), for the
    shape-aware cost table; ``None`` when the input size is not known."""
    if len(input_shape) != 4 or not all(isinstance(v, int) and v > 0 for v in input_shape[2:]):
        return None
    oh, ow = site.attrs.output_size(input_shape[2], input_shape[3])
    return conv_shape(site.weight.shape, max(oh, 1), max(ow, 1), max(site.attrs.strides))


def choose(
    site: ConvSite,
    input_shape: list[int],
    table: CostTable,
    policy: str = "auto",
    blocks: tuple[tuple[int, int], ...] = DEFAULT_BLOCKS,
    nms: tuple[tuple[int, int], ...] = DEFAULT_NM,
) -> tuple[LayerRecord, Compressed | Shrunk | None]:
    if policy not in POLICIES:
        raise UserError(f"unknown format policy '{policy}'; use one of {', '.join(POLICIES)}")
    w = site.weight
    kind = layer_kind(site.attrs.kernel_shape)
    density = site.density
    shape = site_shape(site, input_shape)
    cands: dict[str, Candidate] = {}
    cands["csr"] = (table.ratio("csr", kind, density, shape), lambda: to_csr(w), None, None)
    for r, c in blocks:
        if bsr_fits(w, r, c):
            ratio = table.ratio("bsr", kind, block_density(w, r, c), shape)
            if "bsr" not in cands or (ratio is not None and (cands["bsr"][0] is None or ratio < cands["bsr"][0])):
                cands["bsr"] = (ratio, functools.partial(to_bsr, w, r, c), [r, c], None)
    for n, m in nms:
        if is_nm(w, n, m):
            cands["nm"] = (table.ratio("nm", kind, n / m), functools.partial(to_nm, w, n, m), None, [n, m])
            break
    shrunk = shrink(w, site.bias, site.act)
    if shrunk is not None:
        cands["shrunk"] = (table.ratio("shrunk", kind, shrunk.fraction), lambda: shrunk, None, None)
    best, predicted, note = "dense", 1.0, ""
    if policy == "auto":
        for fmt, (ratio, _, _, _) in cands.items():
            if ratio is not None and ratio < predicted:
                best, predicted = fmt, ratio
        forced_ratio: float | None = predicted
    elif policy in cands:
        best, forced_ratio = policy, cands[policy][0]
    else:
        forced_ratio = 1.0
        if policy != "dense":
            why = {"nm": "not N:M sparse", "bsr": "blocks do not tile it", "shrunk": "no whole filter pruned"}
            note = f"cannot take {policy} ({why[policy]})"
    choice = LayerRecord(name=site.name, kind=kind, weight_shape=list(w.shape), input_shape=input_shape,
                         activation=site.act, density=density, format=best, block=None, nm=None,
                         predicted_ratio=forced_ratio, dense_bytes=int(w.nbytes), stored_bytes=int(w.nbytes),
                         note=note)  # fmt: skip
    if best == "dense":
        return choice, None
    _, build, choice.block, choice.nm = cands[best]
    comp = build()
    if comp is None:  # the candidate was only listed after its shape checks passed
        raise AssertionError(f"{site.name}: {best} could not be built")
    choice.stored_bytes = comp.nbytes
    return choice, comp
