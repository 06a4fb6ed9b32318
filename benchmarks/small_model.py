"""A small multi-task model for the benchmarks, where per-operator overhead dominates: 28x28
single-channel digits, a dozen 3x3 convolutions (32, 64 and 128 channels at 28, 14 and 7
pixels), global average pooling and one linear head per task (digit, parity, >= 5).

Used as a workload reference: ``benchmarks/small_model.py:workload``. Its weights are the
untrained initialisation (Kaiming-uniform, seeded): the benchmarks measure latency, which
depends on the masks only, and global magnitude on this initialisation keeps the early layers
denser (fan-in 9 to 288: larger weights), as trained small models do. Its accuracy means
nothing and is not reported.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from edgeprune.workload import Workload
from edgeprune.workload.base import ModelSpec
from edgeprune.workload.registry import resolve_workload

TASK_CLASSES = {"digit": 10, "parity": 2, "ge5": 2}
STAGES = ((32, 4, 1), (64, 4, 2), (128, 4, 2))  # (channels, convolutions, stride of the first)


class SmallCNN(nn.Module):
    """Twelve 3x3 convolutions with ReLU, then one linear head per task."""

    def __init__(self, task_classes: dict[str, int]) -> None:
        super().__init__()
        torch.manual_seed(0)
        layers: list[nn.Module] = []
        cin = 1
        for cout, count, stride in STAGES:
            for i in range(count):
                layers += [nn.Conv2d(cin, cout, 3, stride=stride if i == 0 else 1, padding=1), nn.ReLU()]
                cin = cout
        self.backbone = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.heads = nn.ModuleDict({t: nn.Linear(cin, c) for t, c in task_classes.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feat = self.backbone(x)
        return {t: head(feat) for t, head in self.heads.items()}


def workload() -> Workload:
    """``digits`` with :class:`SmallCNN` as its only model."""
    digits = resolve_workload("digits")
    spec = ModelSpec("small-cnn", lambda: SmallCNN(TASK_CLASSES), None, "12 convolutions on 28x28 (benchmarks)")
    return dataclasses.replace(digits, name="digits-small", models={"small-cnn": spec})
