"""End-to-end latency of whole pruned models: onnxruntime + our kernel library against the
dense onnxruntime model of the same checkpoint, timed in the same run (interleaved).

    python benchmarks/e2e.py [--size 224] [--threads 1] [--seconds 10]

Cases: mtl-resnet pruned to 90% by CUT (element, block:4x1, each also with --allocate
latency), by global and by layer-wise magnitude; mtl-lite0 by CUT (element, block:4x1) and by
layer-wise magnitude; the small model of ``benchmarks/small_model.py`` (28x28, twelve
convolutions, its own input size) by global magnitude at 90% and 98%, by magnitude with
--allocate latency and by block CUT (no fine-tuning: latency depends on the masks only).
``--cases`` picks cases by a substring of their label. Prints p50 ratio, peak memory of each
model (own process) and model file size ratio; writes benchmarks/results/e2e.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edgeprune.bench.run import bench_artifact
from edgeprune.export.compile import CompileRequest, compile_artifact
from edgeprune.prune.pipeline import PruneRequest, prune, write_checkpoint

SMALL = str(Path(__file__).parent / "small_model.py") + ":workload"
BLOCK = {"granularity": "block:4x1"}
LATENCY = {"allocate": "latency"}
# (model, label, method, options, sparsity or None for --sparsity)
CASES = [
    ("mtl-resnet", "cut", "cut", {}, None),
    ("mtl-resnet", "cut-block4x1", "cut", BLOCK, None),
    ("mtl-resnet", "cut-latency", "cut", LATENCY, None),
    ("mtl-resnet", "cut-block4x1-latency", "cut", {**BLOCK, **LATENCY}, None),
    ("mtl-resnet", "magnitude-global", "magnitude", {"scope": "global"}, None),
    ("mtl-resnet", "magnitude-layer", "magnitude", {"scope": "layer"}, None),
    ("mtl-lite0", "cut", "cut", {}, None),
    ("mtl-lite0", "cut-block4x1", "cut", BLOCK, None),
    ("mtl-lite0", "magnitude-layer", "magnitude", {"scope": "layer"}, None),
    ("small-cnn", "magnitude-global", "magnitude", {"scope": "global"}, None),
    ("small-cnn", "magnitude-global-98", "magnitude", {"scope": "global"}, 0.98),
    ("small-cnn", "magnitude-latency", "magnitude", LATENCY, None),
    ("small-cnn", "cut-block4x1-latency", "cut", {**BLOCK, **LATENCY}, None),
]


def predicted_ratio(art: Path, manifest: object, threads: int) -> tuple[float, int]:
    """The cost model's whole-model prediction of sparse over dense: each layer's share of the
    dense model's time (an onnxruntime profile of dense.onnx, 20 runs, layout optimisations
    off so node names survive) scaled by the calibrated ratio of the format compile chose.
    Returns the ratio and how many sparse layers the profile did not name (0 expected)."""
    opts = ort.SessionOptions()
    opts.enable_profiling, opts.intra_op_num_threads = True, threads
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.profile_file_prefix = str(art / "profile")
    sess = ort.InferenceSession(str(art / "dense.onnx"), opts, providers=["CPUExecutionProvider"])
    feed = {i.name: np.random.default_rng(0).random([d if isinstance(d, int) else 1 for d in i.shape],
                                                    dtype=np.float32) for i in sess.get_inputs()}  # fmt: skip
    for _ in range(25):
        sess.run(None, feed)
    trace = sess.end_profiling()
    times: dict[str, list[float]] = {}
    for event in json.loads(Path(trace).read_text()):
        name = event.get("name", "")
        if event.get("cat") == "Node" and name.endswith("_kernel_time"):
            times.setdefault(name.removeprefix("fused ").removesuffix("_kernel_time"), []).append(event["dur"])
    os.remove(trace)
    node = {n: float(np.median(v[5:])) for n, v in times.items()}  # the first runs warm up
    total = sum(node.values())
    saved, missing = 0.0, 0
    for layer in manifest.layers:  # type: ignore[attr-defined]
        if layer.format == "dense":
            continue
        if layer.name not in node:
            missing += 1
            continue
        saved += node[layer.name] / total * (1 - layer.predicted_ratio)
    return 1 - saved, missing


def prune_request(model: str, method: str, options: dict, sparsity: float, tmp: Path, size: int) -> PruneRequest:
    """The case's prune request (``--allocate latency`` plans for the deploy size); the small
    model's weights are its seeded initialisation."""
    if model != "small-cnn":
        if options.get("allocate") == "latency":
            options = {**options, "input_size": f"{size}x{size}"}
        return PruneRequest("scenes", method, sparsity, model=model, options=options, evaluate_before=False)
    from safetensors.torch import save_file

    from edgeprune.workload.registry import resolve_workload

    weights = tmp / "small-cnn.safetensors"
    if not weights.exists():
        save_file(resolve_workload(SMALL).models["small-cnn"].build().state_dict(), str(weights))
    return PruneRequest(SMALL, method, sparsity, options=options, weights=str(weights), evaluate_before=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=224, help="deploy resolution (square)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--sparsity", type=float, default=0.9)
    ap.add_argument("--cases", default="", help="comma-separated substrings of 'model label' to run (default all)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "e2e"))
    args = ap.parse_args()
    wanted = [c for c in args.cases.split(",") if c]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model, label, method, options, fixed in CASES:
            if wanted and not any(w in f"{model} {label}" for w in wanted):
                continue
            sparsity = fixed or args.sparsity
            ckpt = Path(tmp) / f"{model}-{label}.ept"
            result = prune(prune_request(model, method, options, sparsity, Path(tmp), args.size))
            write_checkpoint(result, ckpt)
            art = Path(tmp) / f"{model}-{label}"
            size = None if model == "small-cnn" else (args.size, args.size)
            manifest = compile_artifact(CompileRequest(ckpt, "host", art, input_size=size))
            res = bench_artifact(art, args.threads, args.seconds)
            predicted, unnamed = predicted_ratio(art, manifest, args.threads)
            mem, lat = res.memory, res.latency
            row = {"model": model, "method": label, "sparsity": sparsity, "size": 28 if size is None else args.size,
                   "allocation_predicted_ratio": result.masks.info.get("predicted_ratio"),
                   "threads": args.threads, "formats": manifest.summary.formats,
                   "dense_p50_ms": lat["dense"].p50_ms, "sparse_p50_ms": lat["sparse"].p50_ms,
                   "ratio_p50": res.ratio_p50, "dense_rss_mib": mem.dense_peak_rss_mib,
                   "sparse_rss_mib": mem.sparse_peak_rss_mib, "file_ratio": manifest.summary.size_ratio,
                   "cpu": res.device.cpu, "isa": res.device.isa, "model_predicted_ratio": predicted,
                   "model_prediction_error": predicted / res.ratio_p50 - 1, "unprofiled_layers": unnamed}  # fmt: skip
            rows.append(row)
            print(f"{model:11s} {label:22s} {sparsity:.2f} dense {row['dense_p50_ms']:8.2f} ms  "
                  f"sparse {row['sparse_p50_ms']:8.2f} "
                  f"ms  ratio {row['ratio_p50']:.3f} ({1 / row['ratio_p50']:.2f}x; predicted {predicted:.3f}, "
                  f"{100 * row['model_prediction_error']:+.0f}%)  RSS {row['sparse_rss_mib']:.0f} "
                  f"vs {row['dense_rss_mib']:.0f} MiB  file {row['file_ratio']:.2f}x  {row['formats']}",
                  flush=True)  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")
    md = [f"Deploy size {args.size}x{args.size} (small-cnn: 28x28), {args.threads} thread(s), {rows[0]['cpu']} "
          f"({rows[0]['isa']}).", "",
          "| model | method | sparsity | dense p50 ms | sparse p50 ms | ratio | predicted ratio (error) | "
          "peak RSS sparse / dense MiB | file ratio | formats |", "|---" * 10 + "|"]  # fmt: skip
    md += [f"| {r['model']} | {r['method']} | {r['sparsity']:.2f} | {r['dense_p50_ms']:.2f} | "
           f"{r['sparse_p50_ms']:.2f} | "
           f"{r['ratio_p50']:.3f} | {r['model_predicted_ratio']:.3f} ({100 * r['model_prediction_error']:+.0f}%) | "
           f"{r['sparse_rss_mib']:.0f} / {r['dense_rss_mib']:.0f} | {r['file_ratio']:.2f} | "
           f"{r['formats']} |" for r in rows]  # fmt: skip
    out.with_suffix(".md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
