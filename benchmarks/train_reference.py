"""Train the shipped reference models (seeded) and save them in half precision.

    python benchmarks/train_reference.py digits-cnn mtl-resnet mtl-lite0

Writes ``edgeprune/models/weights/<name>.safetensors`` and prints the dense metrics that the
README records.
"""

from __future__ import annotations

import argparse
import time

import torch

from edgeprune.evaluate import evaluate
from edgeprune.models.lite0 import MTLLite0
from edgeprune.workload.base import repeat_batches
from edgeprune.workload.registry import resolve_workload
from edgeprune.workload.scenes import TASK_CHANNELS
from edgeprune.workload.weights import save_state, shipped_weights

PLANS = {  # model: (workload, steps, batch, learning rate)
    "digits-cnn": ("digits", 600, 64, 2e-3),
    "pool-cnn": ("digit-pool", 800, 64, 2e-3),
    "pool-vit": ("digit-pool", 1500, 64, 2e-3),
    "mtl-resnet": ("scenes", 3000, 16, 2e-3),
    "mtl-lite0": ("scenes", 2000, 16, 1e-3),
}


def train(name: str) -> None:
    workload_name, steps, batch, lr = PLANS[name]
    torch.manual_seed(0)
    workload = resolve_workload(workload_name)
    # mtl-lite0 starts from the ImageNet-pretrained backbone; the others from scratch.
    model = MTLLite0(TASK_CHANNELS, pretrained=True) if name == "mtl-lite0" else workload.models[name].build()
    tasks = list(workload.tasks)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    model.train()
    start = time.time()
    for step, (x, y) in enumerate(repeat_batches(workload, "train", batch, steps, tasks=tasks), 1):
        losses = workload.task_losses(model(x), y)
        loss = sum(losses.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == steps:
            parts = " ".join(f"{t}={v.item():.3f}" for t, v in losses.items())
            print(f"{name} step {step}/{steps} loss={loss.item():.3f} {parts} ({time.time() - start:.0f}s)", flush=True)
    model.eval()
    save_state(model, shipped_weights(name))
    # Evaluate what ships: the half-precision weights read back.
    shipped = workload.models[name]
    from edgeprune.workload.registry import build_model

    result = evaluate(build_model(workload, shipped.name), workload, tasks)
    for task, values in result.items():
        print(f"{name} dense {task}: " + ", ".join(f"{k}={v:.4f}" for k, v in values.items()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("models", nargs="+", choices=sorted(PLANS))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.models:
        train(name)


if __name__ == "__main__":
    main()
