"""The TVM backend against ONNX Runtime, end to end, in one process and one interleaved run:
dense ONNX Runtime, ONNX Runtime + our kernel library, the dense TVM module and the sparse TVM
module (our kernels linked in), all compiled from the same checkpoint for this machine.

    python benchmarks/tvm_backend.py [--size 224] [--threads 1] [--seconds 10] [--cases mtl-resnet:cut,...]
                                     [--tune-trials N]

Cases: mtl-resnet and mtl-lite0 pruned to 90% by CUT and by global magnitude (no fine-tuning:
latency depends on the masks only). Prints each model's p50, the ratios against dense ONNX
Runtime, compile times and file sizes; writes benchmarks/results/tvm_backend.{md,json}. With
``--tune-trials N`` each case's TVM compile first tunes its dense convolutions with MetaSchedule
(N trials, a fresh database per case) and the TVM compile time is then mostly tuning time.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from edgeprune.bench.timing import interleaved
from edgeprune.contracts.manifest import Manifest
from edgeprune.export.backends.base import Tuning
from edgeprune.export.compile import CompileRequest, compile_artifact
from edgeprune.prune.pipeline import PruneRequest, prune, write_checkpoint
from edgeprune.runtime.runner import open_runner

CASES = {"mtl-resnet:cut": ("mtl-resnet", "cut", {}),
         "mtl-resnet:magnitude": ("mtl-resnet", "magnitude", {"scope": "global"}),
         "mtl-lite0:cut": ("mtl-lite0", "cut", {}),
         "mtl-lite0:magnitude": ("mtl-lite0", "magnitude", {"scope": "global"})}  # fmt: skip
MODELS = ("dense ORT", "ORT + library", "dense TVM", "sparse TVM")


def _case(name: str, tmp: Path, args: argparse.Namespace) -> dict:
    model, method, options = CASES[name]
    ckpt = tmp / f"{model}-{method}.ept"
    write_checkpoint(prune(PruneRequest("scenes", method, args.sparsity, model=model, options=options,
                                        evaluate_before=False)), ckpt)  # fmt: skip
    size = (args.size, args.size)
    arts, seconds = {}, {}
    for backend in ("onnxruntime", "tvm"):
        t0 = time.perf_counter()
        tuned = backend == "tvm" and args.tune_trials > 0
        tuning = Tuning(args.tune_trials, tmp / f"db-{model}-{method}") if tuned else Tuning()
        arts[backend] = compile_artifact(CompileRequest(ckpt, "host", tmp / f"{model}-{method}-{backend}",
                                                        input_size=size, backend=backend, tuning=tuning))  # fmt: skip
        seconds[backend] = time.perf_counter() - t0
    ort_dir, tvm_dir = tmp / f"{model}-{method}-onnxruntime", tmp / f"{model}-{method}-tvm"
    runners = {"dense ORT": open_runner(ort_dir, Manifest.read(ort_dir), "dense", args.threads),
               "ORT + library": open_runner(ort_dir, Manifest.read(ort_dir), "model", args.threads),
               "dense TVM": open_runner(tvm_dir, Manifest.read(tvm_dir), "dense", args.threads),
               "sparse TVM": open_runner(tvm_dir, Manifest.read(tvm_dir), "model", args.threads)}  # fmt: skip
    x = np.random.default_rng(0).standard_normal([1, 3, *size]).astype(np.float32)
    feed = {r.input_name: x for r in runners.values()}
    want = runners["dense ORT"].run(feed)
    errors = {k: max(float(np.abs(g - w).max() / (np.abs(w).max() + 1e-12))
                     for g, w in zip(r.run(feed), want, strict=True)) for k, r in runners.items()}  # fmt: skip
    lat = interleaved({k: (lambda r=r: r.run(feed)) for k, r in runners.items()}, warmup=5, min_runs=20,
                      budget_s=args.seconds)  # fmt: skip
    p50 = {k: lat[k].p50 for k in MODELS}
    files = {"onnx model": arts["onnxruntime"].summary.model_bytes, "tvm model.so": arts["tvm"].summary.model_bytes,
             "tvm dense.so": arts["tvm"].summary.dense_bytes}  # fmt: skip
    return {"case": name, "size": args.size, "threads": args.threads, "sparsity": args.sparsity,
            "formats": arts["tvm"].summary.formats, "p50_ms": p50,
            "vs_dense_ort": {k: p50[k] / p50["dense ORT"] for k in MODELS},
            "sparse_tvm_vs_ort_library": p50["sparse TVM"] / p50["ORT + library"],
            "max_rel_error_vs_dense_ort": errors, "compile_s": seconds, "tune_trials": args.tune_trials,
            "bytes": files}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=224, help="deploy resolution (square)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=10.0, help="timing budget per case")
    ap.add_argument("--sparsity", type=float, default=0.9)
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    ap.add_argument("--tune-trials", type=int, default=0, help="MetaSchedule trials per TVM compile (0: templates)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "tvm_backend"))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases.split(","):
            row = _case(name, Path(tmp), args)
            rows.append(row)
            r = row["vs_dense_ort"]
            print(f"{name:22s} " + "  ".join(f"{k} {row['p50_ms'][k]:7.2f} ms ({r[k]:.2f})" for k in MODELS)
                  + f"  sparse TVM / ORT+lib {row['sparse_tvm_vs_ort_library']:.2f}"
                  + f"  compile ORT {row['compile_s']['onnxruntime']:.1f} s, TVM {row['compile_s']['tvm']:.1f} s",
                  flush=True)  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")
    tuned = (f"TVM modules tuned with {args.tune_trials} MetaSchedule trials (their compile time includes it)"
             if args.tune_trials else "TVM modules untuned (schedule templates; no tuning time)")
    md = [f"Host, {args.size}x{args.size}, {args.threads} thread(s), sparsity {args.sparsity}, one interleaved run "
          f"per case; ratios are p50 against dense ONNX Runtime (lower is faster); {tuned}.", "",
          "| case | dense ORT ms | ORT + library | dense TVM | sparse TVM | sparse TVM / ORT + library | "
          "compile s (ORT / TVM) | model bytes (ONNX / TVM .so) | max rel. error |",
          "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in rows:
        p, r = row["p50_ms"], row["vs_dense_ort"]
        md.append(f"| {row['case']} | {p['dense ORT']:.2f} | {p['ORT + library']:.2f} ({r['ORT + library']:.2f}) | "
                  f"{p['dense TVM']:.2f} ({r['dense TVM']:.2f}) | {p['sparse TVM']:.2f} ({r['sparse TVM']:.2f}) | "
                  f"{row['sparse_tvm_vs_ort_library']:.2f} | {row['compile_s']['onnxruntime']:.1f} / "
                  f"{row['compile_s']['tvm']:.1f} | {row['bytes']['onnx model']:,} / "
                  f"{row['bytes']['tvm model.so']:,} | "
                  f"{max(row['max_rel_error_vs_dense_ort'].values()):.1e} |")  # fmt: skip
    out.with_suffix(".md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
