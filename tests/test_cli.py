import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import run_cli
from safetensors.torch import save_file

from edgeprune.prune.pipeline import PruneRequest, prune, write_checkpoint


def no_output_left(directory):
    return [p.name for p in directory.iterdir()] == []


def test_help_lists_the_methods_without_importing_torch():
    script = ("import sys\nfrom edgeprune.cli.main import main\nsys.argv = ['edgeprune', 'prune', '--help']\n"
              "try:\n    main()\nexcept SystemExit:\n    pass\n"
              "assert 'torch' not in sys.modules, 'torch was imported'\n")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "cut: CUT (arXiv 2504.09803)" in proc.stdout and "l1-filter: whole filters" in proc.stdout


def test_version_and_help(capsys):
    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and out.startswith("edgeprune ")
    code, out, _ = run_cli(["prune", "--help"], capsys)
    assert code == 0 and "--sparsity" in out and "l1-filter" in out


def test_prune_writes_checkpoint_and_json_summary(tmp_path, capsys):
    out_file = tmp_path / "d.ept"
    code, out, _ = run_cli(["prune", "-w", "digits", "-t", "digit,parity", "-m", "magnitude", "-s", "0.7",
                            "--scope", "global", "-o", out_file, "--json"], capsys)  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    assert doc["tasks"] == ["digit", "parity"]
    assert abs(doc["sparsity"]["overall"]["sparsity"] - 0.7) <= 0.005
    assert "prunable weights" in doc["sparsity"]["denominator"]
    assert set(doc["dense"]) == set(doc["pruned"]) == {"digit", "parity"}
    assert out_file.is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["d.ept"]

    code, out, _ = run_cli(["inspect", out_file, "--json"], capsys)
    comps = {c["component"]: c for c in json.loads(out)["components"]}
    assert comps["backbone"]["tasks"] == ["digit", "parity"]
    assert set(comps) == {"backbone", "head:digit", "head:parity"}

    code, out, _ = run_cli(["evaluate", out_file, "--json", "-o", tmp_path / "m.json"], capsys)
    assert code == 0
    assert json.loads(out)["metrics"] == doc["pruned"]
    assert json.loads((tmp_path / "m.json").read_text())["metrics"] == doc["pruned"]


def test_inspect_dense_model_lists_components_and_tasks(capsys):
    code, out, _ = run_cli(["inspect", "-w", "scenes", "--tasks", "seg,normal"], capsys)
    assert code == 0
    assert "backbone" in out and "head:seg" in out and "head:normal" in out and "head:depth" not in out


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("c") / "ok.ept"
    write_checkpoint(prune(PruneRequest("digits", "random", 0.5, evaluate_before=False)), path)
    return path


def corrupt(tmp_path, checkpoint):
    bad = tmp_path / "in" / "bad.ept"
    bad.parent.mkdir()
    bad.write_bytes(checkpoint.read_bytes()[:1000])
    return bad


def weights_file(tmp_path, good):
    path = tmp_path / "in" / "w.safetensors"
    path.parent.mkdir()
    if good:
        save_file({"x": torch.zeros(1)}, str(path))
    else:
        path.write_bytes(b"not safetensors at all")
    return path


BAD = {
    "sparsity above one": (["prune", "-w", "digits", "-s", "1.5"], "sparsity 1.5 is outside"),
    "negative sparsity": (["prune", "-w", "digits", "-s", "-0.1"], "outside [0, 1)"),
    "sparsity of one": (["prune", "-w", "digits", "-s", "1"], "outside [0, 1)"),
    "missing sparsity": (["prune", "-w", "digits"], "needs --sparsity"),
    "unknown task": (["prune", "-w", "digits", "-s", "0.5", "-t", "digit,colour"], "unknown task(s) colour; the model has: digit, parity, ge5"),  # noqa: E501
    "empty task list": (["prune", "-w", "digits", "-s", "0.5", "-t", ","], "--tasks is empty"),
    "unknown method": (["prune", "-w", "digits", "-s", "0.5", "-m", "lottery"], "unknown method 'lottery'; known:"),
    "unknown workload": (["prune", "-w", "imagenet", "-s", "0.5"], "unknown workload 'imagenet'; built-in: scenes, digits"),  # noqa: E501
    "option foreign to the method": (["prune", "-w", "digits", "-s", "0.5", "-m", "l1-filter", "--granularity", "element"], "does not apply to method 'l1-filter'"),  # noqa: E501
    "nm with another sparsity": (["prune", "-w", "digits", "-s", "0.9", "-m", "nm"], "fixes the sparsity at 0.5"),
    "bad granularity": (["prune", "-w", "digits", "-s", "0.5", "--granularity", "block:0x1"], "unknown granularity"),
    "workload file missing": (["prune", "-w", "nowhere.py:WL", "-s", "0.5"], "workload file not found"),
    "workload module missing": (["prune", "-w", "no_such_module_xyz:WL", "-s", "0.5"], "cannot import workload module"),  # noqa: E501
    "workload without attribute": (["prune", "-w", "edgeprune.workload.digits:NOPE", "-s", "0.5"], "has no attribute 'NOPE'"),  # noqa: E501
    "workload attribute of wrong type": (["prune", "-w", "edgeprune.workload.digits:TASK_CLASSES", "-s", "0.5"], "not an edgeprune.workload.Workload"),  # noqa: E501
    "cut option on magnitude": (["prune", "-w", "digits", "-s", "0.5", "-m", "magnitude", "--fusion", "or"], "option --fusion does not apply to method 'magnitude'"),  # noqa: E501
    "adapmtl option on cut": (["prune", "-w", "digits", "-s", "0.5", "-m", "cut", "--window", "5"], "option --window does not apply to method 'cut'"),  # noqa: E501
    "vote-min without vote": (["prune", "-w", "digits", "-s", "0.5", "-m", "cut", "--vote-min", "2"], "--vote-min 2 needs --fusion vote"),  # noqa: E501
    "unknown fusion": (["prune", "-w", "digits", "-s", "0.5", "-m", "cut", "--fusion", "xor"], "unknown fusion 'xor'"),
    "smsp without library": (["prune", "-w", "digit-pool", "-s", "0.5", "-m", "smsp", "-t", "parity"], "needs --mask-library"),  # noqa: E501
    "smsp with a missing library": (["prune", "-w", "digit-pool", "-s", "0.5", "-m", "smsp", "-t", "parity", "--mask-library", "nowhere"], "mask library not found"),  # noqa: E501
    "smsp option on magnitude": (["prune", "-w", "digits", "-s", "0.5", "--mask-library", "lib"], "option --mask-library does not apply to method 'magnitude'"),  # noqa: E501
    "unknown model": (["prune", "-w", "digits", "-s", "0.5", "--model", "vgg"], "unknown model 'vgg'"),
    "missing weights": (["prune", "-w", "digits", "-s", "0.5", "--weights", "missing.safetensors"], "weights file not found"),  # noqa: E501
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD))
def test_bad_prune_input_exits_2_with_one_line_and_no_output(case, tmp_path, capsys):
    args, message = BAD[case]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, _, err = run_cli([*args, "-o", out_dir / "x.ept"], capsys)
    assert code == 2
    assert message in " ".join(err.split())
    assert "Traceback" not in err
    assert no_output_left(out_dir)


def test_corrupt_weights_file(tmp_path, capsys):
    bad = weights_file(tmp_path, good=False)
    code, _, err = run_cli(["prune", "-w", "digits", "-s", "0.5", "--weights", bad, "-o", tmp_path / "o.ept"], capsys)
    assert code == 2 and "not a valid safetensors file" in err
    assert not (tmp_path / "o.ept").exists()


def test_weights_of_another_model(tmp_path, capsys):
    other = weights_file(tmp_path, good=True)
    code, _, err = run_cli(["evaluate", "-w", "digits", "--weights", other], capsys)
    assert code == 2 and "does not fit the model" in err


@pytest.mark.parametrize("command", ["evaluate", "inspect"])
def test_corrupt_and_missing_checkpoints(command, tmp_path, capsys, checkpoint):
    code, _, err = run_cli([command, corrupt(tmp_path, checkpoint)], capsys)
    assert code == 2 and "corrupt or truncated" in err
    code, _, err = run_cli([command, tmp_path / "absent.ept"], capsys)
    assert code == 2 and "checkpoint not found" in err


@pytest.mark.parametrize("command", ["evaluate", "inspect"])
def test_metadata_field_of_the_wrong_type_exits_2_naming_the_field(command, tmp_path, capsys, checkpoint):
    from safetensors import safe_open

    with safe_open(str(checkpoint), framework="pt") as fh:
        meta = json.loads(fh.metadata()["edgeprune"])
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    meta["tasks"] = "digit"
    bad = tmp_path / "typed.ept"
    save_file(tensors, str(bad), metadata={"edgeprune": json.dumps(meta)})
    code, _, err = run_cli([command, bad], capsys)
    assert code == 2 and "field tasks" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_evaluate_unknown_task_of_checkpoint(capsys, checkpoint):
    code, _, err = run_cli(["evaluate", checkpoint, "-t", "colour"], capsys)
    assert code == 2 and "the checkpoint has: digit, parity, ge5" in err


def test_usage_errors_exit_2(capsys):
    code, _, _ = run_cli(["prune", "-w", "digits", "-s", "abc", "-o", "x.ept"], capsys)
    assert code == 2
    code, _, _ = run_cli(["frobnicate"], capsys)
    assert code == 2


def test_mask_library_add_list_and_a_foreign_entry(tmp_path, capsys):
    lib = tmp_path / "lib"
    args = ["mask-library", "add", "-t", "mod4", "--mask-library", lib, "-s", "0.5", "--finetune-steps", "3", "--json"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert abs(json.loads(out)["sparsity"] - 0.5) <= 0.005
    code, out, _ = run_cli(["mask-library", "list", "-l", lib, "--json"], capsys)
    assert [e["task"] for e in json.loads(out)["entries"]] == ["mod4"]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, _, err = run_cli(["prune", "-w", "digit-pool", "-m", "smsp", "--mask-library", lib, "-t", "parity,mod3",
                            "-s", "0.5", "-o", out_dir / "x.ept"], capsys)  # fmt: skip
    assert code == 2 and "one new task at a time" in err
    entry = next(lib.glob("*.json"))
    doc = json.loads(entry.read_text())
    doc["source_hash"] = "f" * 64
    entry.write_text(json.dumps(doc))
    code, _, err = run_cli(["prune", "-w", "digit-pool", "-m", "smsp", "--mask-library", lib, "-t", "parity", "-s",
                            "0.5", "-o", out_dir / "x.ept"], capsys)  # fmt: skip
    assert code == 2 and "another pre-trained model" in err
    assert no_output_left(out_dir)
    code, _, err = run_cli(["mask-library", "list", "-l", tmp_path / "none"], capsys)
    assert code == 2 and "mask library not found" in err


def test_library_is_a_hidden_alias_of_mask_library(tmp_path, capsys):
    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0 and "mask-library" in out
    assert not any(line.strip("│ ").startswith("library ") for line in out.splitlines())
    code, _, err = run_cli(["library", "list", "-l", tmp_path / "none"], capsys)
    assert code == 2 and "mask library not found" in err
