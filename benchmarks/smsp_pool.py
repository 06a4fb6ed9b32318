"""SMSP on the digit-pool task pool: for each new task, a mask library of every *other* task,
SMSP with 100 fine-tuning iterations against magnitude pruning with 1,000 (the claim of
arXiv 2307.04365, Sec. 4.2), on the pool CNN and the pool ViT.

    python benchmarks/smsp_pool.py --sparsity 0.8 --out benchmarks/results/smsp-pool

Prints (and writes ``<out>.md``) top-1 per task: dense, SMSP@100, magnitude (global,
unstructured)@1000, L1-filter (structured)@1000 for the CNN, and SMSP@100 vs magnitude@1000 on
the ViT. Every number is measured in this run.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from edgeprune.fsio import write_text_atomic
from edgeprune.prune.pipeline import PruneRequest, prune
from edgeprune.prune.smsp_library import build_entry, save_entry
from edgeprune.train.finetune import FinetuneConfig

TASKS = ["digit", "parity", "mod3", "mod4", "ge5", "lt3", "prime", "loop"]


def top1(res: object, task: str) -> float:
    return res.after[task]["top1"]  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="pool-cnn,pool-vit")
    parser.add_argument("--new-tasks", default="parity,mod3,prime,loop")
    parser.add_argument("--sparsity", type=float, default=0.8)
    parser.add_argument("--library-steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    s = args.sparsity
    lines = [f"SMSP on digit-pool at {100 * s:.0f}% sparsity of the prunable weights; library entries pruned to "
             f"{100 * s:.0f}% (structured, Taylor) with {args.library_steps} fine-tuning steps; top-1 on the "
             "1,000 evaluation digits", ""]  # fmt: skip
    for model in args.models.split(","):
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as lib:
            for task in TASKS:
                save_entry(build_entry("digit-pool", model, task, s, args.library_steps), lib)
            lib_s = time.perf_counter() - t0
            head = ["new task", "dense", "smsp @100 (similar tasks)", "magnitude @1000", "l1-filter @1000",
                    "smsp - magnitude (points)"]  # fmt: skip
            lines += [f"**{model}** (library of 8 tasks built in {lib_s:.0f}s)", "", "| " + " | ".join(head) + " |",
                      "|" + "---|" * len(head)]  # fmt: skip
            for task in args.new_tasks.split(","):
                common = {"workload": "digit-pool", "tasks": [task], "model": model, "sparsity": s}
                sm = prune(PruneRequest(method="smsp", options={"mask_library": lib, "top_k": 2},
                                        finetune=FinetuneConfig(steps=100, lr=1e-3, batch_size=64), **common))
                mag = prune(PruneRequest(method="magnitude", options={"scope": "global"},
                                         finetune=FinetuneConfig(steps=1000, lr=1e-3, batch_size=64), **common))
                l1 = prune(PruneRequest(method="l1-filter",
                                        finetune=FinetuneConfig(steps=1000, lr=1e-3, batch_size=64), **common))
                dense = sm.before[task]["top1"]
                diff = 100 * (top1(sm, task) - top1(mag, task))
                chosen = ", ".join(sm.masks.info["chosen"])
                lines.append(f"| {task} | {dense:.3f} | {top1(sm, task):.3f} ({chosen}) | {top1(mag, task):.3f} | "
                             f"{top1(l1, task):.3f} | {diff:+.1f} |")  # fmt: skip
                print(lines[-1], flush=True)
            lines.append("")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        write_text_atomic(f"{args.out}.md", text)


if __name__ == "__main__":
    main()
