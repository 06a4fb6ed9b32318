"""Per-layer latency of our sparse convolution op against onnxruntime's dense Conv, measured
in the same run (interleaved), on ResNet layers.

    python benchmarks/kernels.py [--threads 1 2] [--sparsities 0.5 0.7 0.8 0.9 0.95] [--quick]

Unstructured masks run as CSR; block-pruned masks (4x1 blocks of output channels) as BSR.
Prints one row per layer and sparsity with the ratio sparse/dense (below 1 is faster) and the
geometric mean per sparsity; writes benchmarks/results/kernels.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from edgeprune.costmodel.layer_models import dense_conv_model, random_weight, sparse_conv_model, time_against_dense
from edgeprune.formats.compressed import to_bsr, to_csr
from edgeprune.runtime.kernel_library import host_library

LAYERS = [  # (name, cin, cout, k, hw)
    ("3x3 256->256 @56", 256, 256, 3, 56),
    ("3x3 256->256 @28", 256, 256, 3, 28),
    ("3x3 256->256 @14", 256, 256, 3, 14),
    ("3x3 512->512 @28", 512, 512, 3, 28),
    ("3x3 512->512 @14", 512, 512, 3, 14),
    ("1x1 128->128 @28", 128, 128, 1, 28),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--sparsities", type=float, nargs="+", default=[0.5, 0.7, 0.8, 0.9, 0.95])
    ap.add_argument("--budget", type=float, default=1.5, help="seconds of timing per case")
    ap.add_argument("--quick", action="store_true", help="two layers, one thread, 90%% only")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "kernels"))
    args = ap.parse_args()
    layers = LAYERS[1:2] + LAYERS[5:] if args.quick else LAYERS
    threads = [1] if args.quick else args.threads
    sparsities = [0.9] if args.quick else args.sparsities
    lib = host_library()
    rng = np.random.default_rng(0)
    rows = []
    print(f"{'layer':20s} {'fmt':8s} {'thr':>3s} {'sparsity':>8s} {'dense ms':>9s} {'ours ms':>9s} {'ratio':>6s}")
    for name, cin, cout, k, hw in layers:
        x = rng.standard_normal((1, cin, hw, hw)).astype(np.float32)
        b = rng.standard_normal(cout).astype(np.float32)
        for s in sparsities:
            for fmt, block in (("csr", (1, 1)), ("bsr4x1", (4, 1))):
                w = random_weight(rng, cout, cin, k, 1 - s, block)
                comp = to_csr(w) if fmt == "csr" else to_bsr(w, *block)
                for t in threads:
                    dense, ours, want, got = time_against_dense(dense_conv_model(w, b, hw),
                                                                sparse_conv_model(comp, b, hw), x, t, lib, args.budget)
                    err = float(np.abs(got - want).max() / (np.abs(want).max() + 1e-9))
                    ratio = ours.p50 / dense.p50
                    rows.append({"layer": name, "format": fmt, "threads": t, "sparsity": s, "dense_ms": dense.p50,
                                 "ours_ms": ours.p50, "ratio": ratio, "max_rel_err": err})  # fmt: skip
                    print(f"{name:20s} {fmt:8s} {t:3d} {s:8.2f} {dense.p50:9.3f} {ours.p50:9.3f} {ratio:6.3f}")
    print("\ngeometric mean of ratio (ours/dense) per format, threads, sparsity:")
    summary = []
    for fmt in ("csr", "bsr4x1"):
        for t in threads:
            for s in sparsities:
                rs = [r["ratio"] for r in rows if r["format"] == fmt and r["threads"] == t and r["sparsity"] == s]
                gm = math.exp(sum(map(math.log, rs)) / len(rs))
                summary.append({"format": fmt, "threads": t, "sparsity": s, "geomean_ratio": gm})
                print(f"  {fmt:7s} threads={t} sparsity={s:.2f}: {gm:.3f}  ({1 / gm:.2f}x faster)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))
    md = ["| layer | format | threads | sparsity | dense ms | ours ms | ratio |", "|---|---|---|---|---|---|---|"]
    md += [f"| {r['layer']} | {r['format']} | {r['threads']} | {r['sparsity']:.2f} | {r['dense_ms']:.3f} | "
           f"{r['ours_ms']:.3f} | {r['ratio']:.3f} |" for r in rows]  # fmt: skip
    md += ["", "| format | threads | sparsity | geomean ratio |", "|---|---|---|---|"]
    md += [f"| {s['format']} | {s['threads']} | {s['sparsity']:.2f} | {s['geomean_ratio']:.3f} |" for s in summary]
    out.with_suffix(".md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
