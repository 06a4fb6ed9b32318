"""Helpers the tests import (`from helpers import run_cli`); tests/ is on sys.path through
`pythonpath` in pyproject.toml. Fixtures live in conftest.py, not here."""

import sys

import pytest
import torch
from torch import nn

from edgeprune.cli.main import main


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


def no_output_left(directory):
    return [p.name for p in directory.iterdir()] == []


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


USER_WORKLOAD = """
import torch
from torch import nn
from edgeprune.metrics import top1
from edgeprune.workload import Metric, ModelSpec, Task, Workload

class TwoTask(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 32), nn.ReLU())
        self.a = nn.Linear(32, 2)
        self.b = nn.Linear(32, 3)

    def forward(self, x):
        f = self.body(x)
        return {"a": self.a(f), "b": self.b(f)}

def data(split):
    g = torch.Generator().manual_seed({"train": 0, "calibration": 1, "eval": 2}[split])
    x = torch.randn(256, 6, generator=g)
    return x, {"a": (x[:, 0] > 0).long(), "b": (x[:, 1] * 2).long().clamp(-1, 1) + 1}

tasks = {t: Task(t, torch.nn.functional.cross_entropy, (Metric("top1", top1, True),)) for t in ("a", "b")}
WORKLOAD = Workload("mine", tasks, {"twotask": ModelSpec("twotask", TwoTask, WEIGHTS)}, data)
"""


def write_user_workload(tmp_path):
    """A user's workload file (two tasks on a small MLP, with its weights) in ``tmp_path``."""
    from edgeprune.workload.weights import save_state

    torch.manual_seed(0)
    weights = tmp_path / "twotask.safetensors"
    ns: dict = {"WEIGHTS": None}
    exec(USER_WORKLOAD, ns)  # build the model class to save initial weights
    save_state(ns["TwoTask"](), weights, half=False)
    path = tmp_path / "my_workload.py"
    path.write_text(USER_WORKLOAD.replace("WEIGHTS)", f"{str(weights)!r})"))
    return path


# Arguments of the `checkpoints` fixture (conftest.py) for the pruned checkpoints that tests in
# several files share; a file's own checkpoints are spelt out where it uses them.
DIGITS_50 = {"workload": "digits", "method": "magnitude", "sparsity": 0.5}
DIGITS_90 = {"workload": "digits", "method": "magnitude", "sparsity": 0.9}
RESNET90 = {"workload": "scenes", "method": "magnitude", "sparsity": 0.9, "model": "mtl-resnet", "scope": "global"}

# The boards shipped in edgeprune/targets/ (besides "host").
BOARDS = ["jetson-orin-nano", "jetson-orin-nx", "jetson-agx-orin", "jetson-xavier-nx", "jetson-nano", "rpi4", "rpi5",
          "aarch64-generic"]  # fmt: skip
