"""``edgeprune calibrate``: measure, on the machine it runs on, how long each sparse format
takes relative to onnxruntime's dense Conv across densities, for a 3x3 and a 1x1 layer, and
write the table the compiler's format chooser reads (:mod:`edgeprune.costmodel.table`)."""

from __future__ import annotations

import platform
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgeprune.costmodel.layer_models import (
    dense_conv_model,
    random_weight,
    shrunk_conv_model,
    sparse_conv_model,
    time_against_dense,
)
from edgeprune.costmodel.table import CostTable
from edgeprune.formats.compressed import to_bsr, to_csr, to_nm
from edgeprune.formats.shrunk import shrink
from edgeprune.runtime.kernel_library import check_library

LAYERS = {"kxk": (128, 128, 3, 28), "1x1": (256, 256, 1, 28)}  # cin, cout, k, hw
DENSITIES = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7)


def _nm_weight(rng: np.random.Generator, cout: int, cin: int, k: int) -> np.ndarray:
    w = rng.standard_normal((cout, cin, k, k)).astype(np.float32)
    groups = w.transpose(0, 2, 3, 1).reshape(-1, 4)
    drop = np.argsort(np.abs(groups), axis=1)[:, :2]
    np.put_along_axis(groups, drop, 0.0, axis=1)
    return groups.reshape(cout, k, k, cin).transpose(0, 3, 1, 2).copy()


def calibrate(target: str, library: Path, threads: int, budget_s: float = 0.4,
              progress: Callable[[int, int], None] | None = None) -> CostTable:  # fmt: skip
    isa = check_library(library)
    rng = np.random.default_rng(0)
    jobs = [(kind, fmt, d) for kind in LAYERS for fmt in ("csr", "bsr", "shrunk") for d in DENSITIES]
    jobs += [(kind, "nm", 0.5) for kind in LAYERS]
    curves: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for i, (kind, fmt, d) in enumerate(jobs):
        cin, cout, k, hw = LAYERS[kind]
        b = rng.standard_normal(cout).astype(np.float32)
        if fmt == "nm":
            w = _nm_weight(rng, cout, cin, k)
            nm = to_nm(w, 2, 4)
            assert nm is not None  # _nm_weight keeps 2 of every 4
            model = sparse_conv_model(nm, b, hw)
        elif fmt == "shrunk":  # whole filters kept with probability d
            w = rng.standard_normal((cout, cin, k, k)).astype(np.float32) * (rng.random((cout, 1, 1, 1)) < d)
            w[0] = rng.standard_normal(w.shape[1:])  # at least one filter
            small = shrink(w, b, "relu")
            assert small is not None  # some filters go, filter 0 stays
            model = shrunk_conv_model(small, hw)
        else:
            w = random_weight(rng, cout, cin, k, d, (4, 1) if fmt == "bsr" else (1, 1))
            model = sparse_conv_model(to_csr(w) if fmt == "csr" else to_bsr(w, 4, 1), b, hw)
        x = rng.standard_normal((1, cin, hw, hw)).astype(np.float32)
        dense, ours, _, _ = time_against_dense(dense_conv_model(w, b, hw), model, x, threads, library, budget_s, 10)
        curves.setdefault((kind, fmt), []).append((d, ours.p50 / dense.p50))
        if progress:
            progress(i + 1, len(jobs))
    layers = {k: dict(zip(("cin", "cout", "k", "hw"), v, strict=True)) for k, v in LAYERS.items()}
    device = {"machine": platform.machine(), "processor": platform.processor() or platform.machine(), "isa": isa,
              "layers": layers}  # fmt: skip
    return CostTable(target, True, device, threads, {k: sorted(v) for k, v in curves.items()})
