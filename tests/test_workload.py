import json

import torch
from conftest import run_cli

from edgeprune.workload.base import Workload
from edgeprune.workload.registry import resolve_workload

USER_WORKLOAD = '''
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
'''


def write_user_workload(tmp_path):
    from edgeprune.workload.weights import save_state

    torch.manual_seed(0)
    weights = tmp_path / "twotask.safetensors"
    ns: dict = {"WEIGHTS": None}
    exec(USER_WORKLOAD, ns)  # build the model class to save initial weights
    save_state(ns["TwoTask"](), weights, half=False)
    path = tmp_path / "my_workload.py"
    path.write_text(USER_WORKLOAD.replace("WEIGHTS)", f"{str(weights)!r})"))
    return path


def test_user_workload_file_resolves(tmp_path):
    wl = resolve_workload(f"{write_user_workload(tmp_path)}:WORKLOAD")
    assert isinstance(wl, Workload) and wl.name == "mine" and wl.default_model == "twotask"


def test_user_workload_prunes_through_the_cli(tmp_path, capsys):
    path = write_user_workload(tmp_path)
    out = tmp_path / "mine.ept"
    code, stdout, err = run_cli(["prune", "-w", f"{path}:WORKLOAD", "-t", "b", "-s", "0.6", "--finetune-steps", "3",
                                 "-o", out, "--json"], capsys)  # fmt: skip
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["tasks"] == ["b"] and abs(doc["sparsity"]["overall"]["sparsity"] - 0.6) <= 0.005
    assert out.is_file()


def test_batches_cover_the_split_once():
    wl = resolve_workload("digits")
    seen = sum(len(x) for x, _ in wl.batches("eval", 300, shuffle_seed=1))
    assert seen == len(wl.split("eval")[0]) == 1000
    x, y = next(wl.batches("eval", 8, tasks=["parity"]))
    assert list(y) == ["parity"] and torch.equal(y["parity"], torch.arange(2)[y["parity"]])


def test_digits_labels_are_consistent():
    _, y = resolve_workload("digits").split("train")
    assert torch.equal(y["parity"], y["digit"] % 2) and torch.equal(y["ge5"], (y["digit"] >= 5).long())
