"""Magnitude pruning at 50/70/90/95% on mtl-resnet + scenes (all three tasks): per-task metrics,
per-component sparsity and ΔT against the dense model, with the same fine-tuning budget each.

    python benchmarks/magnitude_sweep.py [--steps 300] [--scope global] [--out table.md]

Prints a markdown table (and writes it with --out).
"""

from __future__ import annotations

import argparse
import time

import torch

from edgeprune.fsio import write_text_atomic
from edgeprune.prune.pipeline import PruneRequest, prune
from edgeprune.train.finetune import FinetuneConfig

KEY_METRICS = ["seg.miou", "seg.pixel_acc", "depth.abs_err", "depth.rel_err", "normal.mean_deg", "normal.within_30"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mtl-resnet")
    parser.add_argument("--sparsities", default="0.5,0.7,0.9,0.95")
    parser.add_argument("--scope", default="global", choices=["layer", "global"])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows, comps, dense = [], [], None
    for s in (float(v) for v in args.sparsities.split(",")):
        t0 = time.perf_counter()
        r = prune(PruneRequest("scenes", "magnitude", s, model=args.model, options={"scope": args.scope},
                               finetune=FinetuneConfig(steps=args.steps, lr=args.lr)))  # fmt: skip
        flat = {f"{t}.{m}": v for t, ms in r.after.items() for m, v in ms.items()}
        dense = {f"{t}.{m}": v for t, ms in r.before.items() for m, v in ms.items()}
        rows.append((s, r.report.overall.sparsity, flat, r.delta_t, time.perf_counter() - t0))
        comps = [c.name for c in r.report.components]
        rows[-1] += ({c.name: c.sparsity for c in r.report.components},)
        print(f"done {s:.2f}: ΔT {r.delta_t:+.2f}% in {rows[-1][4]:.0f}s", flush=True)

    head = ["target", "overall", *KEY_METRICS, *comps, "ΔT %", "wall s"]
    lines = [f"magnitude pruning ({args.scope}), {args.model} + scenes, {args.steps} fine-tuning steps (Adam, lr "
             f"{args.lr:g}), sparsity over prunable conv/linear weights", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
             "| dense | 0% | " + " | ".join(f"{dense[k]:.4f}" for k in KEY_METRICS) + " | " +
             " | ".join("0%" for _ in comps) + " | 0.00 | |"]  # fmt: skip
    for s, got, flat, dt, wall, per in rows:
        cells = [f"{100 * s:.0f}%", f"{100 * got:.2f}%", *(f"{flat[k]:.4f}" for k in KEY_METRICS),
                 *(f"{100 * per[c]:.1f}%" for c in comps), f"{dt:+.2f}", f"{wall:.0f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        write_text_atomic(args.out, table)


if __name__ == "__main__":
    main()
