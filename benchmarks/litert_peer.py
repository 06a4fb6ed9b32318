"""A peer in the same run: LiteRT (XNNPACK), what a user would pick instead, against dense ONNX
Runtime and ONNX Runtime with our kernel library, on the same pruned checkpoints.

    python -m venv --system-site-packages .venv-litert
    .venv-litert/bin/pip install -c constraints.txt litert-torch torch==2.13.0
    .venv-litert/bin/python benchmarks/litert_peer.py [--size 224] [--threads 1] [--seconds 8]

LiteRT needs ``litert-torch`` (PyTorch -> .tflite, no TensorFlow) and ``ai-edge-litert``, which
pull packages edgeprune does not use (jax, transformers): hence their own virtual environment,
which sees edgeprune's through ``--system-site-packages`` and keeps the pinned CPU torch. Each
case is pruned as in ``benchmarks/e2e.py``, compiled for this machine, and its masked PyTorch
model converted to .tflite; the three are timed in turns in one process. XNNPACK's own sparse
inference is off on x86 CPUs with AVX (XNNPACK's ``xnn_is_chw_compatible_config``): LiteRT runs
the pruned weights dense here, which is what a user of this machine would get. Writes
``benchmarks/results/litert_peer.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))

import e2e  # noqa: E402 - benchmarks/e2e.py: the cases' prune requests

from edgeprune.bench.timing import interleaved  # noqa: E402
from edgeprune.checkpoint import load_checkpoint, masked_model  # noqa: E402
from edgeprune.export.compile import CompileRequest, compile_artifact  # noqa: E402
from edgeprune.prune.pipeline import prune, write_checkpoint  # noqa: E402
from edgeprune.runtime.kernel_library import host_library, session  # noqa: E402

CASES = [  # (model, label, method, options)
    ("mtl-resnet", "cut", "cut", {}),
    ("mtl-resnet", "cut-block4x1-latency", "cut", {**e2e.BLOCK, **e2e.LATENCY}),
    ("mtl-lite0", "cut", "cut", {}),
    ("small-cnn", "cut-block4x1-latency", "cut", {**e2e.BLOCK, **e2e.LATENCY}),
]


def tflite(ckpt: Path, x: np.ndarray, out: Path, small: bool) -> Path:
    """The checkpoint's masked model as .tflite (outputs in task order)."""
    import litert_torch

    from edgeprune.workload.registry import resolve_workload

    loaded = load_checkpoint(ckpt)
    workload = resolve_workload(e2e.SMALL) if small else None  # this file's own: trusted
    model, tasks = masked_model(loaded, workload).eval(), loaded.meta.tasks

    class Outputs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, inp: torch.Tensor) -> tuple[torch.Tensor, ...]:
            res = self.model(inp)
            return tuple(res[t] for t in tasks)

    litert_torch.convert(Outputs().eval(), (torch.from_numpy(x),)).export(str(out))
    return out


def disagreement(want: np.ndarray, got: list[np.ndarray]) -> float:
    """Relative max difference of an ONNX Runtime output to the closest LiteRT output of its
    shape (LiteRT numbers its outputs its own way)."""
    return min(float(np.abs(g - want).max() / (np.abs(want).max() + 1e-9)) for g in got if g.shape == want.shape)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--sparsity", type=float, default=0.9)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "litert_peer"))
    args = ap.parse_args()
    from ai_edge_litert.interpreter import Interpreter

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model, label, method, options in CASES:
            size = 28 if model == "small-cnn" else args.size
            ckpt = Path(tmp) / f"{model}-{label}.ept"
            write_checkpoint(prune(e2e.prune_request(model, method, options, args.sparsity, Path(tmp), size)), ckpt)
            art = Path(tmp) / f"{model}-{label}"
            compile_artifact(CompileRequest(ckpt, "host", art,
                                            input_size=None if model == "small-cnn" else (size, size)))  # fmt: skip
            channels = 1 if model == "small-cnn" else 3
            x = np.random.default_rng(0).random((1, channels, size, size), dtype=np.float32)
            path = tflite(ckpt, x, Path(tmp) / f"{model}-{label}.tflite", model == "small-cnn")
            lite = Interpreter(model_path=str(path), num_threads=args.threads)
            lite.allocate_tensors()
            lite.set_tensor(lite.get_input_details()[0]["index"], x)
            dense = session(art / "dense.onnx", args.threads)
            ours = session(art / "model.onnx", args.threads, host_library())
            feed = {dense.get_inputs()[0].name: x}
            lite.invoke()
            got = [lite.get_tensor(d["index"]) for d in lite.get_output_details()]
            want = ours.run(None, feed)
            agree = max(disagreement(w, got) for w in want)
            lat = interleaved({"ort_dense": lambda d=dense, f=feed: d.run(None, f),
                               "ours": lambda o=ours, f=feed: o.run(None, f), "litert": lite.invoke},
                              budget_s=args.seconds, min_runs=20)  # fmt: skip
            row = {"model": model, "method": label, "sparsity": args.sparsity, "size": size, "threads": args.threads,
                   **{f"{k}_p50_ms": v.p50 for k, v in lat.items()},
                   "ours_over_ort_dense": lat["ours"].p50 / lat["ort_dense"].p50,
                   "litert_over_ort_dense": lat["litert"].p50 / lat["ort_dense"].p50,
                   "ours_over_litert": lat["ours"].p50 / lat["litert"].p50, "output_disagreement": agree}  # fmt: skip
            rows.append(row)
            print(f"{model:11s} {label:22s} ORT dense {row['ort_dense_p50_ms']:7.2f} ms  ours "
                  f"{row['ours_p50_ms']:7.2f} ms ({row['ours_over_ort_dense']:.3f})  LiteRT "
                  f"{row['litert_p50_ms']:7.2f} ms ({row['litert_over_ort_dense']:.3f})  "
                  f"ours/LiteRT {row['ours_over_litert']:.3f}  "
                  f"outputs agree to {agree:.1e}", flush=True)  # fmt: skip
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")
    md = [f"{args.threads} thread(s), {args.sparsity:.0%} sparsity, p50 in ms (ratio to dense ONNX Runtime); LiteRT "
          "runs the pruned weights dense (XNNPACK's sparse inference is off on x86 with AVX).", "",
          "| model | method | size | ORT dense | ORT + our library | LiteRT (XNNPACK) | ours / LiteRT |",
          "|---|---|---|---|---|---|---|"]  # fmt: skip
    md += [f"| {r['model']} | {r['method']} | {r['size']} | {r['ort_dense_p50_ms']:.2f} | {r['ours_p50_ms']:.2f} "
           f"({r['ours_over_ort_dense']:.3f}) | {r['litert_p50_ms']:.2f} ({r['litert_over_ort_dense']:.3f}) | "
           f"{r['ours_over_litert']:.3f} |" for r in rows]  # fmt: skip
    out.with_suffix(".md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
