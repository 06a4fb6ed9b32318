"""Per-layer format choice: the format the calibrated cost model predicts fastest, or the one
the user forces with ``--format-policy``. A forced format a layer cannot take (N:M on a layer
that is not N:M sparse, blocks that do not tile it) leaves that layer dense, with the reason.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edgeprune.costmodel import CostTable, layer_kind
from edgeprune.errors import UserError
from edgeprune.export.rewrite import ConvSite
from edgeprune.export.shrink import Shrunk, shrink
from edgeprune.formats import Compressed, as_matrix, bsr_fits, is_nm, to_bsr, to_csr, to_nm

POLICIES = ("auto", "dense", "csr", "bsr", "nm", "shrunk")
DEFAULT_BLOCKS = ((4, 1), (8, 1))
DEFAULT_NM = ((2, 4),)


@dataclasses.dataclass
class LayerChoice:
    name: str
    kind: str
    weight_shape: list[int]
    input_shape: list[int]
    activation: str
    density: float
    format: str  # dense | csr | bsr | nm | shrunk
    block: list[int] | None
    nm: list[int] | None
    predicted_ratio: float | None
    dense_bytes: int
    stored_bytes: int
    note: str = ""


def block_density(w: np.ndarray, r: int, c: int) -> float:
    m = as_matrix(w)
    blocks = np.abs(m.reshape(m.shape[0] // r, r, m.shape[1] // c, c)).sum(axis=(1, 3))
    return float(np.count_nonzero(blocks)) / blocks.size


def choose(
    site: ConvSite,
    input_shape: list[int],
    table: CostTable,
    policy: str = "auto",
    blocks: tuple[tuple[int, int], ...] = DEFAULT_BLOCKS,
    nms: tuple[tuple[int, int], ...] = DEFAULT_NM,
) -> tuple[LayerChoice, Compressed | Shrunk | None]:
    if policy not in POLICIES:
        raise UserError(f"unknown format policy '{policy}'; use one of {', '.join(POLICIES)}")
    w = site.weight
    kind = layer_kind(site.attrs.kernel_shape)
    density = site.density
    # Candidates: format -> (predicted ratio, how to build it, block, nm)
    cands: dict[str, tuple[float | None, object, list[int] | None, list[int] | None]] = {}
    cands["csr"] = (table.ratio("csr", kind, density), lambda: to_csr(w), None, None)
    for r, c in blocks:
        if bsr_fits(w, r, c):
            ratio = table.ratio("bsr", kind, block_density(w, r, c))
            if "bsr" not in cands or (ratio is not None and (cands["bsr"][0] is None or ratio < cands["bsr"][0])):
                cands["bsr"] = (ratio, lambda r=r, c=c: to_bsr(w, r, c), [r, c], None)
    for n, m in nms:
        if is_nm(w, n, m):
            cands["nm"] = (table.ratio("nm", kind, n / m), lambda n=n, m=m: to_nm(w, n, m), None, [n, m])
            break
    shrunk = shrink(w, site.bias, site.act)
    if shrunk is not None:
        cands["shrunk"] = (table.ratio("shrunk", kind, shrunk.fraction), lambda: shrunk, None, None)
    note = ""
    if policy == "auto":
        best, best_ratio = "dense", 1.0
        for fmt, (ratio, _, _, _) in cands.items():
            if ratio is not None and ratio < best_ratio:
                best, best_ratio = fmt, ratio
    elif policy == "dense" or policy in cands:
        best = policy
        best_ratio = 1.0 if policy == "dense" else cands[policy][0]
    else:
        best, best_ratio = "dense", 1.0
        why = {"nm": "not N:M sparse", "bsr": "blocks do not tile it", "shrunk": "no whole filter pruned"}
        note = f"cannot take {policy} ({why[policy]})"
    choice = LayerChoice(site.name, kind, list(w.shape), input_shape, site.act, density, best, None, None,
                         best_ratio, int(w.nbytes), int(w.nbytes), note)  # fmt: skip
    if best == "dense":
        return choice, None
    _, build, choice.block, choice.nm = cands[best]
    comp = build()
    choice.stored_bytes = comp.nbytes
    return choice, comp
