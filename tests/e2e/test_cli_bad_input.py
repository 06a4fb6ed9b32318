"""Bad input to the prune-stage commands (prune, evaluate, inspect) and to compile and bench: exit
code 2, one line naming the problem, no traceback, nothing written."""

import json

import pytest
import torch
from helpers import DIGITS_50, RESNET90, no_output_left, run_cli
from safetensors.torch import save_file


@pytest.fixture
def checkpoint(checkpoints):
    return checkpoints(**DIGITS_50)


@pytest.fixture
def resnet90(checkpoints):
    return checkpoints(**RESNET90)


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
    "NaN sparsity": (["prune", "-w", "digits", "-s", "nan"], "--sparsity must be a finite number, got nan"),
    "NaN learning rate": (["prune", "-w", "digits", "-s", "0.5", "--lr", "nan"], "--lr must be a finite number"),
    "infinite adapmtl learning rate": (["prune", "-w", "digits", "-s", "0.5", "-m", "adapmtl", "--train-lr", "inf"], "--train-lr must be a finite number"),  # noqa: E501
    "zero threads": (["prune", "-w", "digits", "-s", "0.5", "--threads", "0"], "--threads must be at least 1"),
    "too many threads": (["prune", "-w", "digits", "-s", "0.5", "--threads", "100000"], "is more than this machine can use: at most"),  # noqa: E501
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


def bad_args(resnet90, tmp_path):
    o = tmp_path / "o"
    return {
        "unknown target": (["compile", resnet90, "-o", o, "--target", "nosuch"], "unknown target 'nosuch'"),
        "corrupt checkpoint": (["compile", tmp_path / "bad.ept", "-o", tmp_path / "o"], "corrupt or truncated"),
        "missing checkpoint": (["compile", tmp_path / "none.ept", "-o", tmp_path / "o"], "checkpoint not found"),
        "format policy": (["compile", resnet90, "-o", o, "--format-policy", "fast"], "unknown format policy"),
        "input size": (["compile", resnet90, "-o", tmp_path / "o", "--input-size", "big"], "not HxW"),
        "existing output": (["compile", resnet90, "-o", tmp_path / "exists"], "exists; use --force"),
        "not an artifact": (["bench", tmp_path / "exists"], "not an edgeprune artifact"),
        "bench threads": (["bench", tmp_path / "exists", "--seconds", "0"], "--seconds must be positive"),
        "bench NaN seconds": (["bench", tmp_path / "exists", "--seconds", "nan"], "--seconds must be positive"),
        "zero input size": (["compile", resnet90, "-o", o, "--input-size", "0x224"], "each side must be at least 1"),
        "huge input size": (["compile", resnet90, "-o", o, "--input-size", "99999x99999"], "is too large for model mtl-resnet"),  # noqa: E501
        "compile onto a file": (["compile", resnet90, "-o", tmp_path / "bad.ept", "--force"], "exists and is not a directory"),  # noqa: E501
    }


@pytest.mark.parametrize("case", ["unknown target", "corrupt checkpoint", "missing checkpoint", "format policy",
                                  "input size", "existing output", "not an artifact", "bench threads",
                                  "bench NaN seconds", "zero input size", "huge input size",
                                  "compile onto a file"])  # fmt: skip
def test_bad_input_exits_2_with_one_line_and_nothing_written(case, resnet90, tmp_path, capsys):
    (tmp_path / "bad.ept").write_bytes(resnet90.read_bytes()[:5000])
    (tmp_path / "exists").mkdir()
    args, message = bad_args(resnet90, tmp_path)[case]
    code, _, err = run_cli(args, capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.ept", "exists"]
