import sys

import pytest
import torch
from torch import nn

from edgeprune.cli.main import main


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


def run_cli(args, capsys):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    old = sys.argv
    sys.argv = ["edgeprune", *map(str, args)]
    try:
        with pytest.raises(SystemExit) as exc:
            main()
    finally:
        sys.argv = old
    captured = capsys.readouterr()
    return exc.value.code or 0, captured.out, captured.err


class SharedBackbone(nn.Module):
    """backbone -> one head per task."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.heads = nn.ModuleDict({t: nn.Conv2d(8, 2, 1) for t in ("a", "b", "c")})

    def forward(self, x):
        f = self.backbone(x)
        return {t: h(f) for t, h in self.heads.items()}


class TreeModel(nn.Module):
    """trunk (a, b, c) -> branch1 (a, b) -> heads a, b; branch2 (c) -> head c."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Conv2d(3, 8, 3, padding=1)
        self.branch1 = nn.Conv2d(8, 8, 3, padding=1)
        self.branch2 = nn.Conv2d(8, 8, 3, padding=1)
        self.head_a = nn.Conv2d(8, 1, 1)
        self.head_b = nn.Conv2d(8, 1, 1)
        self.head_c = nn.Conv2d(8, 1, 1)

    def forward(self, x):
        t = torch.relu(self.trunk(x))
        b1, b2 = torch.relu(self.branch1(t)), torch.relu(self.branch2(t))
        return {"a": self.head_a(b1), "b": self.head_b(b1), "c": self.head_c(b2)}


class SharedNeck(nn.Module):
    """backbone -> seg head; backbone -> neck -> depth and normal heads."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Conv2d(3, 8, 3, padding=1)
        self.neck = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.seg = nn.Conv2d(8, 4, 1)
        self.depth = nn.Conv2d(8, 1, 1)
        self.normal = nn.Conv2d(8, 3, 1)

    def forward(self, x):
        f = torch.relu(self.backbone(x))
        n = self.neck(f)
        return {"seg": self.seg(f), "depth": self.depth(n), "normal": self.normal(n)}
