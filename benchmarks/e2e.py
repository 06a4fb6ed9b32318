"""End-to-end latency of whole pruned models: onnxruntime + our kernel library against the
dense onnxruntime model of the same checkpoint, timed in the same run (interleaved).

    python benchmarks/e2e.py [--size 224] [--threads 1] [--seconds 10]

Cases: mtl-resnet pruned to 90% by CUT, by global and by layer-wise magnitude; mtl-lite0 by
CUT and by layer-wise magnitude (no fine-tuning: latency depends on the masks only). Prints p50 ratio,
peak memory of each model (own process) and model file size ratio; writes
benchmarks/results/e2e.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from edgeprune.bench.run import bench_artifact
from edgeprune.export.compile import CompileRequest, compile_artifact
from edgeprune.prune.pipeline import PruneRequest, prune, write_checkpoint

CASES = [
    ("mtl-resnet", "cut", {}),
    ("mtl-resnet", "magnitude", {"scope": "global"}),
    ("mtl-resnet", "magnitude", {"scope": "layer"}),
    ("mtl-lite0", "cut", {}),
    ("mtl-lite0", "magnitude", {"scope": "layer"}),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=224, help="deploy resolution (square)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--sparsity", type=float, default=0.9)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "e2e"))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model, method, options in CASES:
            label = method + (f"-{options['scope']}" if "scope" in options else "")
            ckpt = Path(tmp) / f"{model}-{label}.ept"
            req = PruneRequest("scenes", method, args.sparsity, model=model, options=options,
                               evaluate_before=False)  # fmt: skip
            write_checkpoint(prune(req), ckpt)
            art = Path(tmp) / f"{model}-{label}"
            manifest = compile_artifact(CompileRequest(ckpt, "host", art, input_size=(args.size, args.size)))
            res = bench_artifact(art, args.threads, args.seconds)
            mem, lat = res.memory, res.latency
            row = {"model": model, "method": label, "sparsity": args.sparsity, "size": args.size,
                   "threads": args.threads, "formats": manifest.summary.formats,
                   "dense_p50_ms": lat["dense"].p50_ms, "sparse_p50_ms": lat["sparse"].p50_ms,
                   "ratio_p50": res.ratio_p50, "dense_rss_mib": mem.dense_peak_rss_mib,
                   "sparse_rss_mib": mem.sparse_peak_rss_mib, "file_ratio": manifest.summary.size_ratio,
                   "cpu": res.device.cpu, "isa": res.device.isa}  # fmt: skip
            rows.append(row)
            print(f"{model:11s} {label:15s} dense {row['dense_p50_ms']:8.2f} ms  sparse {row['sparse_p50_ms']:8.2f} "
                  f"ms  ratio {row['ratio_p50']:.3f} ({1 / row['ratio_p50']:.2f}x)  RSS {row['sparse_rss_mib']:.0f} "
                  f"vs {row['dense_rss_mib']:.0f} MiB  file {row['file_ratio']:.2f}x  {row['formats']}",
                  flush=True)  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")
    md = [f"Deploy size {args.size}x{args.size}, {args.threads} thread(s), {rows[0]['cpu']} ({rows[0]['isa']}).", "",
          "| model | method | dense p50 ms | sparse p50 ms | ratio | peak RSS sparse / dense MiB | file ratio | "
          "formats |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    md += [f"| {r['model']} | {r['method']} | {r['dense_p50_ms']:.2f} | {r['sparse_p50_ms']:.2f} | "
           f"{r['ratio_p50']:.3f} | {r['sparse_rss_mib']:.0f} / {r['dense_rss_mib']:.0f} | {r['file_ratio']:.2f} | "
           f"{r['formats']} |" for r in rows]  # fmt: skip
    out.with_suffix(".md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
