"""``edgeprune calibrate``: measure, on the machine it runs on, how long each sparse format
takes relative to onnxruntime's dense Conv across densities, for a 3x3 and a 1x1 layer, and
CSR and BSR also at the layer shapes of ``SHAPES`` (from 16 channels at 112x112 to 512 at
7x7, where the per-call cost weighs more) and the stride-2 ones of ``STRIDED``, and write the
table the compiler's format chooser and ``--allocate latency`` read
(:mod:`edgeprune.costmodel.table`)."""

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
from edgeprune.costmodel.table import CostTable, LayerShape
from edgeprune.formats.compressed import to_bsr, to_csr, to_nm
from edgeprune.formats.shrunk import shrink
from edgeprune.runtime.kernel_library import check_library

Shape = tuple[int, int, int, int]  # cin, cout, k, hw
LAYERS: dict[str, Shape] = {"kxk": (128, 128, 3, 28), "1x1": (256, 256, 1, 28)}
DENSITIES = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7)
SHAPES: dict[str, tuple[Shape, ...]] = {  # a ResNet's stages at two sizes, and small late layers
    "kxk": ((16, 16, 3, 112), (32, 32, 3, 56), (64, 64, 3, 28), (128, 128, 3, 14), (256, 256, 3, 7),
            (64, 64, 3, 56), (256, 256, 3, 14), (32, 32, 3, 14), (64, 64, 3, 7)),
    "1x1": ((32, 32, 1, 56), (64, 64, 1, 28), (128, 128, 1, 14), (256, 256, 1, 7), (64, 64, 1, 56),
            (512, 512, 1, 7), (32, 32, 1, 14)),
}  # fmt: skip
SHAPED_DENSITIES = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
STRIDED = {  # stride-2 layers (cin, cout, k, input hw): a ResNet's downsampling convolutions
    "kxk": ((3, 16, 3, 224), (16, 32, 3, 112), (32, 64, 3, 56), (64, 128, 3, 28), (128, 256, 3, 14)),
    "1x1": ((16, 32, 1, 112), (32, 64, 1, 56), (64, 128, 1, 28), (128, 256, 1, 14)),
}  # fmt: skip


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
    jobs: list[tuple[str, str, float, Shape, int]] = [
        (kind, fmt, d, LAYERS[kind], 1) for kind in LAYERS for fmt in ("csr", "bsr", "shrunk") for d in DENSITIES]
    jobs += [(kind, "nm", 0.5, LAYERS[kind], 1) for kind in LAYERS]
    jobs += [(kind, fmt, d, shape, stride) for stride, shapes in ((1, SHAPES), (2, STRIDED)) for kind in shapes
             for shape in shapes[kind] for fmt in ("csr", "bsr") for d in SHAPED_DENSITIES]  # fmt: skip
    curves: dict[tuple[str, str], list[tuple[float, float]]] = {}
    others: dict[tuple[str, str, Shape, int], list[tuple[float, float]]] = {}
    for i, (kind, fmt, d, shape, stride) in enumerate(jobs):
        cin, cout, k, hw = shape
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
            model = sparse_conv_model(to_csr(w) if fmt == "csr" else to_bsr(w, 4, 1), b, hw, stride)
        x = rng.standard_normal((1, cin, hw, hw)).astype(np.float32)
        dense, ours, _, _ = time_against_dense(dense_conv_model(w, b, hw, stride), model, x, threads, library,
                                               budget_s, 10)  # fmt: skip
        if shape == LAYERS[kind] and stride == 1:
            curves.setdefault((kind, fmt), []).append((d, ours.p50 / dense.p50))
        else:
            others.setdefault((kind, fmt, shape, stride), []).append((d, ours.p50 / dense.p50))
        if progress:
            progress(i + 1, len(jobs))
    layers = {k: dict(zip(("cin", "cout", "k", "hw"), v, strict=True)) for k, v in LAYERS.items()}
    device = {"machine": platform.machine(), "processor": platform.processor() or platform.machine(), "isa": isa,
              "layers": layers}  # fmt: skip
    table_shaped: dict[tuple[str, str], list[tuple[LayerShape, list[tuple[float, float]]]]] = {}
    for (kind, fmt, shape, stride), pts in others.items():
        table_shaped.setdefault((kind, fmt), []).append((LayerShape.of(*shape, stride=stride), sorted(pts)))
    return CostTable(target, True, device, threads, {k: sorted(v) for k, v in curves.items()}, "", table_shaped)
