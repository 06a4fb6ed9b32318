"""edgeprune verify: an artifact for an ARM board runs under qemu-aarch64 with the board's CPU
model (rpi4: armv8.0 cortex-a57; jetson-orin-nano: cortex-a76) in an emulated Python with
onnxruntime, and every task output matches the host PyTorch model; an artifact whose numbers are
wrong (a bad compile: the manifest's hashes match) FAILs; a file changed after compile is refused
before it runs."""

import json
import shutil

import numpy as np
import onnx
import pytest
from helpers import run_cli
from onnx import numpy_helper

from edgeprune.contracts.manifest import MANIFEST
from edgeprune.export.compile import CompileRequest, compile_artifact
from edgeprune.fsio import sha256_file

TOOLS = ("aarch64-linux-gnu-g++", "qemu-aarch64", "mmdebstrap", "unshare")
needs_emulation = pytest.mark.skipif(not all(shutil.which(t) for t in TOOLS),
                                     reason="needs g++-aarch64-linux-gnu, qemu-user, mmdebstrap")  # fmt: skip


def scale_sparse_values(art):
    """Change the sparse model's numbers (its stored nonzeros times 1.5), leaving a valid model."""
    model = onnx.load(art / "model.onnx")
    init = next(i for i in model.graph.initializer if i.name.endswith(".values"))
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * np.float32(1.5), init.name))
    onnx.save(model, art / "model.onnx")


def rehash_model(art):
    """Rewrite the manifest's sha256 and size of model.onnx to match it, as a bad compile would."""
    doc = json.loads((art / MANIFEST).read_text())
    path = art / doc["files"]["model"]["path"]
    doc["files"]["model"].update(sha256=sha256_file(path), bytes=path.stat().st_size)
    (art / MANIFEST).write_text(json.dumps(doc))


@pytest.fixture
def checkpoint(checkpoints):
    return checkpoints("scenes", "magnitude", 0.9, tasks=["seg", "depth"], scope="global")


def test_host_artifact_verifies_natively(checkpoint, tmp_path, capsys):
    compile_artifact(CompileRequest(checkpoint, "host", tmp_path / "a"))
    code, out, _ = run_cli(["verify", tmp_path / "a", "--json"], capsys)
    doc = json.loads(out)
    assert code == 0 and doc["ran"] == "native" and doc["passed"]
    assert {o["task"] for o in doc["outputs"]} == {"seg", "depth"} and len(doc["outputs"]) == 4


@pytest.mark.slow
@needs_emulation
@pytest.mark.parametrize(("board", "cpu"), [("rpi4", "cortex-a57"), ("jetson-orin-nano", "cortex-a76")])
def test_board_artifact_passes_under_emulation(board, cpu, checkpoint, tmp_path, capsys):
    compile_artifact(CompileRequest(checkpoint, board, tmp_path / "a"))
    code, out, _ = run_cli(["verify", tmp_path / "a"], capsys)
    assert code == 0, out
    assert f"qemu-aarch64 -cpu {cpu}" in out
    assert out.count("PASS sample") == 4 and out.strip().endswith("PASS") and " ms" not in out


@pytest.mark.slow
@needs_emulation
def test_a_corrupted_board_artifact_fails(checkpoint, tmp_path, capsys):
    art = tmp_path / "a"
    compile_artifact(CompileRequest(checkpoint, "rpi4", art))
    scale_sparse_values(art)
    code, _, err = run_cli(["verify", art], capsys)  # changed after compile: refused before qemu runs it
    assert code == 2 and "model.onnx does not match the manifest" in err, err
    rehash_model(art)  # now the numeric comparison, not the hash check, is what fails
    code, out, _ = run_cli(["verify", art], capsys)
    assert code == 1 and "FAIL sample" in out and out.strip().endswith("FAIL")


def test_a_host_artifact_with_wrong_numbers_fails(checkpoint, tmp_path, capsys):
    compile_artifact(CompileRequest(checkpoint, "host", tmp_path / "a"))
    scale_sparse_values(tmp_path / "a")
    rehash_model(tmp_path / "a")
    code, out, _ = run_cli(["verify", tmp_path / "a"], capsys)
    assert code == 1 and "FAIL sample" in out and out.strip().endswith("FAIL")


def test_verify_refuses_a_model_changed_after_compile(checkpoint, tmp_path, capsys):
    compile_artifact(CompileRequest(checkpoint, "host", tmp_path / "a"))
    scale_sparse_values(tmp_path / "a")  # a valid model, but not the one the manifest describes
    code, out, err = run_cli(["verify", tmp_path / "a"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "PASS" not in out and "FAIL" not in out, err
    assert "model.onnx does not match the manifest" in err and "compile it again" in err


def test_verify_refuses_another_checkpoint(checkpoint, tmp_path, capsys):
    compile_artifact(CompileRequest(checkpoint, "host", tmp_path / "a"))
    other = tmp_path / "other.ept"
    other.write_bytes(checkpoint.read_bytes() + b" ")
    code, _, err = run_cli(["verify", tmp_path / "a", "--checkpoint", other], capsys)
    assert code == 2 and "not the checkpoint this artifact was compiled from" in err
