"""Workloads through the CLI: a user's workload file prunes; its checkpoint records the file as
a hint only: compile and verify read the graph the checkpoint carries and need no workload;
evaluate and inspect, which need the workload's data and code, take it from --workload and
never import the one the checkpoint names."""

import json

import pytest
from helpers import DIGITS_50, run_cli, write_user_workload


def test_user_workload_prunes_through_the_cli(tmp_path, capsys):
    path = write_user_workload(tmp_path)
    out = tmp_path / "mine.ept"
    code, stdout, err = run_cli(["prune", "-w", f"{path}:WORKLOAD", "-t", "b", "-s", "0.6", "--finetune-steps", "3",
                                 "-o", out, "--json"], capsys)  # fmt: skip
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["tasks"] == ["b"] and abs(doc["sparsity"]["overall"]["sparsity"] - 0.6) <= 0.005
    assert out.is_file()


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


def test_checkpoint_of_a_user_workload_compiles_and_verifies_without_it(tmp_path, monkeypatch, capsys):
    """From another directory, the workload file deleted: compile and verify need only the
    checkpoint (issue 9 asked that a relative FILE.py:ATTR checkpoint compile elsewhere; issue
    15 that it do so without importing the file)."""
    path, ckpt = prune_relative_user_workload(tmp_path, monkeypatch, capsys)
    path.unlink()
    code, _, err = run_cli(["compile", ckpt, "-o", tmp_path / "art", "--json"], capsys)
    assert code == 0, err
    code, out, err = run_cli(["verify", tmp_path / "art", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["passed"] is True


@pytest.mark.parametrize("command", ["evaluate", "inspect"])
def test_evaluate_and_inspect_ask_for_a_user_workload_and_offer_the_recorded_one(command, tmp_path, monkeypatch,
                                                                                 capsys):  # fmt: skip
    path, ckpt = prune_relative_user_workload(tmp_path, monkeypatch, capsys)
    code, _, err = run_cli([command, ckpt], capsys)
    message = " ".join(err.split())
    assert code == 2 and "Traceback" not in err
    assert f"pruned with the workload '{path.resolve()}:WORKLOAD', which is not built in" in message
    assert "never imports code a checkpoint names: pass --workload" in message
    code, out, err = run_cli([command, ckpt, "--workload", f"{path.resolve()}:WORKLOAD", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["workload"] == f"{path.resolve()}:WORKLOAD" and json.loads(out)["tasks"] == ["a", "b"]


def test_a_recorded_module_is_offered_not_imported(tmp_path, capsys, checkpoints):
    from safetensors import safe_open
    from safetensors.torch import save_file

    ckpt = checkpoints.copy(tmp_path / "d.ept", **DIGITS_50)  # private: the test rewrites its metadata
    with safe_open(str(ckpt), framework="pt") as fh:
        meta = json.loads(fh.metadata()["edgeprune"])
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    meta["workload"] = "no_such_package_xyz.workloads:WL"
    save_file(tensors, str(ckpt), metadata={"edgeprune": json.dumps(meta)})
    code, _, err = run_cli(["evaluate", ckpt], capsys)
    assert code == 2 and "'no_such_package_xyz.workloads:WL', which is not built in" in " ".join(err.split())
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
