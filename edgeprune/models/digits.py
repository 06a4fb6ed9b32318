"""``digits-cnn``: the tiny reference model (trains in seconds) for the ``digits`` workload.

A two-layer convolutional trunk shared by three classification heads: the digit, its parity
and whether it is at least five.

Usage::

    from edgeprune.models.digits import DigitsCNN
    net = DigitsCNN({"digit": 10, "parity": 2, "ge5": 2})
    net(torch.zeros(1, 1, 28, 28))["digit"].shape   # (1, 10)
"""

from __future__ import annotations

import torch
from torch import nn


class DigitsCNN(nn.Module):
    """Shared conv trunk, one MLP head per task."""

    def __init__(self, task_classes: dict[str, int], width: int = 16, hidden: int = 64) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(2 * width * 7 * 7, hidden), nn.ReLU(),
        )  # fmt: skip
        self.heads = nn.ModuleDict(
            {t: nn.Sequential(nn.Linear(hidden, hidden // 2), nn.ReLU(), nn.Linear(hidden // 2, c))
             for t, c in task_classes.items()}
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feat = self.backbone(x)
        return {t: head(feat) for t, head in self.heads.items()}
