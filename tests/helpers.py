"""Helpers the tests import (`from helpers import run_cli`); tests/ is on sys.path through
`pythonpath` in pyproject.toml. Fixtures live in conftest.py, not here."""

import os
import subprocess
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


BLOCKER = '''
import sys

class Blocked:
    """Every import of these packages fails, as on a board's runtime install."""
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)", name=name)
        return None

sys.meta_path.insert(0, Blocked())
'''


def cli_without(site, *packages):
    """A function that runs ``python -m edgeprune ARGS`` in a subprocess (and its children) where
    every import of ``packages`` fails; ``site`` is a directory for the sitecustomize that does it."""
    (site / "sitecustomize.py").write_text(BLOCKER.format(blocked=set(packages)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "edgeprune", *map(str, args)], capture_output=True, text=True,
                              env=env, timeout=300)  # fmt: skip

    assert run("--version").returncode == 0
    for package in packages:
        probe = subprocess.run([sys.executable, "-c", f"import {package}"], capture_output=True, env=env)
        assert probe.returncode != 0, f"the blocker must make {package} unimportable"
    return run


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


def manifest_doc():
    """A valid manifest.json document (edgeprune.artifact/2)."""
    layer = {"name": "conv1", "kind": "kxk", "weight_shape": [8, 3, 3, 3], "input_shape": [1, 3, 16, 16],
             "activation": "relu", "density": 0.1, "format": "csr", "block": None, "nm": None,
             "predicted_ratio": 0.4, "dense_bytes": 864, "stored_bytes": 200, "note": ""}  # fmt: skip
    return {
        "format": "edgeprune.artifact/2", "edgeprune_version": "0.1.0", "backend": "onnxruntime",
        "target": {"name": "host", "description": "this machine", "arch": "x86_64", "cpu_flags": [], "qemu_cpu": "",
                   "threads": 2, "calibration": {"file": "host.json", "measured": True},
                   "power": {"sensor": "none", "interface": "none", "total_rail": "", "rails": []}},
        "checkpoint": {"file": "m.ept", "path": "/tmp/m.ept", "sha256": "ab" * 32, "workload": "digits",
                       "model": "digits-cnn", "method": "magnitude"},
        "tasks": ["digit"], "inputs": [{"name": "input", "shape": ["batch", 1, 28, 28], "dtype": "float32"}],
        "outputs": [{"name": "digit", "task": "digit"}],
        "files": {"model": {"path": "model.onnx", "sha256": "00" * 32, "bytes": 10},
                  "dense": {"path": "dense.onnx", "sha256": "11" * 32, "bytes": 20}},
        "library": None, "format_policy": "auto", "layers": [layer],
        "summary": {"layers": 1, "formats": {"csr": 1}, "model_bytes": 10, "dense_bytes": 20, "size_ratio": 0.5},
        "check": {"input": "x", "max_rel_error_with_library": 1e-6, "max_rel_error_fallback": 1e-6},
    }  # fmt: skip


def results_doc():
    """A valid results.json document (edgeprune.results/2), energy not measured."""
    stats = {"p50_ms": 1.0, "p90_ms": 1.2, "p99_ms": 1.5, "mean_ms": 1.1, "min_ms": 0.9, "runs": 30}
    return {"format": "edgeprune.results/2", "time": "2026-12-02T00:00:00+00:00", "target": "host",
            "device": {"machine": "x86_64", "cpu": "cpu", "isa": "avx512", "hostname": "h"},
            "artifact": {"path": "a", "model_sha256": "0" * 64, "tasks": ["digit"]}, "threads": 1, "batch": 1,
            "latency": {"sparse": dict(stats), "dense": dict(stats)}, "ratio_p50": 1.0, "speedup_p50": 1.0,
            "memory": {"sparse_peak_rss_mib": None, "dense_peak_rss_mib": 50.0, "method": "VmHWM"},
            "model_bytes": {"sparse": 1, "dense": 2}, "energy": None, "energy_reason": "not measured",
            "agreement": {"input": "x", "max_rel_error_vs_dense": {"digit": 0.0}}}  # fmt: skip
