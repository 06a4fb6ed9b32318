import json

import pytest
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


def prune_relative_user_workload(tmp_path, monkeypatch, capsys):
    """Prune with ``--workload my_workload.py:WORKLOAD`` given relative to the working directory."""
    src = tmp_path / "src"
    src.mkdir()
    path = write_user_workload(src)
    monkeypatch.chdir(src)
    ckpt = tmp_path / "mine.ept"
    code, _, err = run_cli(["prune", "-w", f"{path.name}:WORKLOAD", "-s", "0.5", "-o", ckpt, "--json"], capsys)
    assert code == 0, err
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return path, ckpt


def test_checkpoint_of_a_relative_workload_file_works_from_another_directory(tmp_path, monkeypatch, capsys):
    path, ckpt = prune_relative_user_workload(tmp_path, monkeypatch, capsys)
    code, out, err = run_cli(["evaluate", ckpt, "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["workload"] == f"{path.resolve()}:WORKLOAD"
    code, out, err = run_cli(["inspect", ckpt, "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["tasks"] == ["a", "b"]


@pytest.mark.parametrize("command", ["evaluate", "inspect"])
def test_checkpoint_whose_workload_file_is_gone_asks_for_workload(command, tmp_path, monkeypatch, capsys):
    path, ckpt = prune_relative_user_workload(tmp_path, monkeypatch, capsys)
    path.unlink()
    code, _, err = run_cli([command, ckpt], capsys)
    assert code == 2 and "Traceback" not in err
    message = " ".join(err.split())
    assert "cannot be found" in message and "workload file not found" in message and "--workload" in message


def test_checkpoint_whose_workload_module_is_not_importable_asks_for_workload(tmp_path, capsys):
    from safetensors import safe_open
    from safetensors.torch import save_file

    ckpt = tmp_path / "d.ept"
    code, _, err = run_cli(["prune", "-w", "digits", "-s", "0.5", "-o", ckpt], capsys)
    assert code == 0, err
    with safe_open(str(ckpt), framework="pt") as fh:
        meta = json.loads(fh.metadata()["edgeprune"])
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    meta["workload"] = "no_such_package_xyz.workloads:WL"
    save_file(tensors, str(ckpt), metadata={"edgeprune": json.dumps(meta)})
    code, _, err = run_cli(["evaluate", ckpt], capsys)
    assert code == 2 and "cannot import workload module" in err and "--workload" in err
    code, out, err = run_cli(["evaluate", ckpt, "--workload", "digits", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["workload"] == "digits"


@pytest.mark.parametrize("command", ["evaluate", "inspect"])
def test_workload_override_finds_a_moved_workload_file(command, tmp_path, monkeypatch, capsys):
    path, ckpt = prune_relative_user_workload(tmp_path, monkeypatch, capsys)
    moved = tmp_path / "moved.py"
    moved.write_text(path.read_text())
    path.unlink()
    code, out, err = run_cli([command, ckpt, "--workload", f"{moved}:WORKLOAD", "--json"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["workload"] == f"{moved}:WORKLOAD" and doc["tasks"] == ["a", "b"]


def test_checkpoint_workload_prefers_the_override_and_records_absolute_files(tmp_path, monkeypatch):
    from edgeprune.workload.registry import checkpoint_workload, workload_reference

    monkeypatch.chdir(tmp_path)
    assert workload_reference("wl/my.py:WL") == f"{tmp_path / 'wl' / 'my.py'}:WL"
    assert workload_reference("digits") == "digits" and workload_reference("pkg.mod:WL") == "pkg.mod:WL"
    assert checkpoint_workload("gone.py:WL", "digits").name == "digits"
