"""Accuracy table: every method at 50/70/90/95% overall sparsity on a scenes model, the same
training budget for all, plus CUT's fusions on 2 and 3 tasks.

    python benchmarks/accuracy_table.py --model mtl-resnet --budget 300 --out results/accuracy
    python benchmarks/accuracy_table.py --model mtl-lite0 --sparsities 0.9 --budget 300 --out results/lite0
    python benchmarks/accuracy_table.py --hardware --out results/accuracy-mtl-resnet-hardware

The budget is the number of training iterations after (or during) pruning, the same for all:
one-shot methods fine-tune ``budget`` steps; IMP spends it across its rounds and a final
fine-tune; AdapMTL co-trains weights and thresholds for ``budget`` steps. Writes
``<out>.md`` (the table) and ``<out>.png`` (ΔT against sparsity per method). Every number is
measured in this run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from edgeprune.fsio import atomic_path, write_text_atomic
from edgeprune.prune.pipeline import PruneRequest, prune
from edgeprune.train.finetune import FinetuneConfig

KEY_METRICS = ["seg.miou", "depth.abs_err", "normal.mean_deg"]
REFERENCE_TRAIN_STEPS = {"mtl-resnet": 3000, "mtl-lite0": 2000}  # benchmarks/train_reference.py


@dataclasses.dataclass
class Run:
    label: str
    method: str
    options: dict
    finetune_steps: int
    lr: float


def runs(budget: int, lr: float) -> list[Run]:
    third = budget // 3
    return [
        Run("random", "random", {}, budget, lr),
        Run("magnitude (global)", "magnitude", {"scope": "global"}, budget, lr),
        Run("snip", "snip", {}, budget, lr),
        Run("imp (3 rounds)", "imp", {"rounds": 3, "round_steps": third}, budget - 2 * third, lr),
        Run("cut (or)", "cut", {"fusion": "or"}, budget, lr),
        Run("cut (or, paper lr 1e-5)", "cut", {"fusion": "or"}, budget, 1e-5),
        Run("adapmtl", "adapmtl", {"train_steps": budget, "train_lr": lr}, 0, lr),
    ]


def run_one(model: str, tasks: list[str], r: Run, sparsity: float) -> dict:
    t0 = time.perf_counter()
    res = prune(PruneRequest("scenes", r.method, sparsity, tasks=tasks, model=model, options=r.options,
                             finetune=FinetuneConfig(steps=r.finetune_steps, lr=r.lr)))  # fmt: skip
    flat = {f"{t}.{m}": v for t, ms in res.after.items() for m, v in ms.items()}
    dense = {f"{t}.{m}": v for t, ms in res.before.items() for m, v in ms.items()}
    scoring = res.masks.info.get("scoring_s", res.timings.get("scoring_s", 0.0))
    return {"label": r.label, "sparsity": sparsity, "got": res.report.overall.sparsity, "metrics": flat,
            "dense": dense, "dt": res.delta_t, "comps": {c.name: c.sparsity for c in res.report.components},
            "scoring_s": scoring, "prune_s": res.timings.get("scoring_s", 0.0),
            "finetune_s": res.timings.get("finetune_s", 0.0), "wall_s": time.perf_counter() - t0,
            "info": res.masks.info}  # fmt: skip


def table(rows: list[dict], tasks: list[str], title: str) -> str:
    metrics = [k for k in KEY_METRICS if k.split(".")[0] in tasks]
    comps = list(rows[0]["comps"])
    head = ["method", "target", "reached", *metrics, *comps, "ΔT %", "scoring/method s", "fine-tune s"]
    lines = [title, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    dense = rows[0]["dense"]
    lines.append("| dense | | | " + " | ".join(f"{dense[k]:.4f}" for k in metrics) + " | "
                 + " | ".join("" for _ in comps) + " | 0.00 | | |")  # fmt: skip
    for r in rows:
        cells = [r["label"], f"{100 * r['sparsity']:.0f}%", f"{100 * r['got']:.2f}%",
                 *(f"{r['metrics'][k]:.4f}" for k in metrics), *(f"{100 * r['comps'][c]:.1f}%" for c in comps),
                 f"{r['dt']:+.2f}", f"{r['prune_s']:.1f}", f"{r['finetune_s']:.1f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label in dict.fromkeys(r["label"] for r in rows):
        pts = sorted((r["sparsity"], r["dt"]) for r in rows if r["label"] == label)
        ax.plot([100 * p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
    ax.axhline(-5, color="grey", linestyle=":", linewidth=1)
    ax.set_yscale("symlog", linthresh=10)  # keeps -2% and -200% readable on one axis
    ax.set_xlabel("overall sparsity (%)")
    ax.set_ylabel("ΔT vs dense (%, symlog)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


LATENCY_224 = {"allocate": "latency", "input_size": "224x224"}  # planned for benchmarks/e2e.py's deploy size
# (label, method, options, sparsity): each against element-wise CUT (or) at the same sparsity
HARDWARE = [
    ("cut (or)", "cut", {}, 0.9),
    ("cut (or), block:4x1", "cut", {"granularity": "block:4x1"}, 0.9),
    ("cut (or), --allocate latency", "cut", {**LATENCY_224}, 0.9),
    ("cut (or), block:4x1, --allocate latency", "cut", {"granularity": "block:4x1", **LATENCY_224}, 0.9),
    ("adapmtl", "adapmtl", {}, 0.9),
    ("adapmtl, block:4x1", "adapmtl", {"granularity": "block:4x1"}, 0.9),
    ("cut (or)", "cut", {}, 0.5),
    ("cut (or), 2:4", "cut", {"granularity": "2:4"}, 0.5),
]


def hardware_table(args: argparse.Namespace) -> None:
    """The accuracy cost of masks the fast kernels like, against element-wise CUT."""
    tasks = args.tasks.split(",")
    rows = []
    for label, method, options, sparsity in HARDWARE:
        if method == "adapmtl":
            run = Run(label, method, {**options, "train_steps": args.budget, "train_lr": args.lr}, 0, args.lr)
        else:
            run = Run(label, method, options, args.budget, args.lr)
        rows.append(run_one(args.model, tasks, run, sparsity))
        print(f"{label} @ {sparsity:.2f}: ΔT {rows[-1]['dt']:+.2f}% ({rows[-1]['wall_s']:.0f}s)", flush=True)
    reference = {r["sparsity"]: r["dt"] for r in rows if r["label"] == "cut (or)"}
    title = (f"{args.model} + scenes ({', '.join(tasks)}): masks the fast kernels run against element-wise CUT, "
             f"{args.budget} training iterations each (Adam, lr {args.lr:g}), 2 threads")  # fmt: skip
    text = table(rows, tasks, title)
    text += "\n| mask | sparsity | ΔT % | ΔT - element-wise CUT's (points) |\n|---|---|---|---|\n"
    for r in rows:
        diff = r["dt"] - reference[r["sparsity"]]
        text += f"| {r['label']} | {100 * r['sparsity']:.0f}% | {r['dt']:+.2f} | {diff:+.2f} |\n"
    print(text)
    out = Path(args.out)
    write_text_atomic(out.with_suffix(".md"), text)
    write_text_atomic(out.with_suffix(".json"), json.dumps(rows, indent=1, default=str) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mtl-resnet")
    parser.add_argument("--tasks", default="seg,depth,normal")
    parser.add_argument("--sparsities", default="0.5,0.7,0.9,0.95")
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--methods", default=None, help="comma-separated methods to run (default all)")
    parser.add_argument("--labels", default=None, help="comma-separated row labels to run (default all)")
    parser.add_argument("--fusion", action="store_true", help="also compare CUT's fusions on 2 and 3 tasks at 90%%")
    parser.add_argument("--hardware", action="store_true",
                        help="only the hardware-aware masks (block:4x1, 2:4, --allocate latency) against "
                             "element-wise CUT at the same budget")  # fmt: skip
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="accuracy")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tasks = args.tasks.split(",")
    plan = [r for r in runs(args.budget, args.lr) if (not args.methods or r.method in args.methods.split(","))
            and (not args.labels or r.label in args.labels.split(","))]  # fmt: skip

    if args.hardware:
        hardware_table(args)
        return
    rows = []
    for r in plan:
        for s in (float(v) for v in args.sparsities.split(",")):
            rows.append(run_one(args.model, tasks, r, s))
            print(f"{r.label} @ {s:.2f}: ΔT {rows[-1]['dt']:+.2f}% reached {100 * rows[-1]['got']:.2f}% "
                  f"({rows[-1]['wall_s']:.0f}s)", flush=True)  # fmt: skip
    title = (f"{args.model} + scenes ({', '.join(tasks)}), {args.budget} training iterations per method "
             f"(Adam, lr {args.lr:g} unless noted), 2 threads")  # fmt: skip
    text = table(rows, tasks, title)
    cut = [r for r in rows if r["label"] == "cut (or)"]
    if cut:
        per_step = max(cut[0]["finetune_s"], 1e-9) / args.budget
        full = per_step * REFERENCE_TRAIN_STEPS.get(args.model, 3000)
        text += (f"\nCUT scoring cost: {cut[0]['scoring_s']:.1f}s ({cut[0]['info']['scoring_passes']}) against "
                 f"{full:.0f}s for a full fine-tune ({REFERENCE_TRAIN_STEPS.get(args.model, 3000)} iterations at "
                 f"{per_step * 1000:.0f} ms measured here): {100 * cut[0]['scoring_s'] / full:.1f}%\n")  # fmt: skip
    if args.fusion:
        fusion_rows = []
        for task_set in (["seg", "depth"], ["seg", "depth", "normal"]):
            for how in ("or", "and", "vote"):
                row = run_one(args.model, task_set, Run(f"cut ({how}) {'+'.join(task_set)}", "cut",
                                                        {"fusion": how}, args.budget, args.lr), 0.9)  # fmt: skip
                row["keep_ratio"] = row["info"]["keep_ratio"]
                fusion_rows.append(row)
                print(f"{row['label']}: ΔT {row['dt']:+.2f}%", flush=True)
        text += "\nCUT fusion at 90% (per-task keep ratio searched to meet the target):\n\n"
        text += "| tasks | fusion | per-task keep ratio | ΔT % | " + " | ".join(KEY_METRICS) + " |\n"
        text += "|---|---|---|---|" + "---|" * len(KEY_METRICS) + "\n"
        for r in fusion_rows:
            ts, how = r["label"].split(" ")[2], r["label"].split(" ")[1].strip("()")
            vals = " | ".join(f"{r['metrics'][k]:.4f}" if k in r["metrics"] else "" for k in KEY_METRICS)
            text += f"| {ts} | {how} | {r['keep_ratio']:.4f} | {r['dt']:+.2f} | {vals} |\n"
    print(text)
    out = Path(args.out)
    write_text_atomic(out.with_suffix(".md"), text)
    write_text_atomic(out.with_suffix(".json"), json.dumps(rows, indent=1, default=str) + "\n")
    plot(rows, out.with_suffix(".png"), f"{args.model} + scenes, {args.budget} iterations per method")


if __name__ == "__main__":
    main()
