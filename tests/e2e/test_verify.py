"""edgeprune verify: an artifact for an ARM board runs under qemu-aarch64 with the board's CPU
model (rpi4: armv8.0 cortex-a57; jetson-orin-nano: cortex-a76) in an emulated Python with
onnxruntime, and every task output matches the host PyTorch model; a corrupted artifact FAILs."""

import json
import shutil

import numpy as np
import onnx
import pytest
from helpers import run_cli
from onnx import numpy_helper

from edgeprune.export.compile import CompileRequest, compile_artifact

TOOLS = ("aarch64-linux-gnu-g++", "qemu-aarch64", "mmdebstrap", "unshare")
needs_emulation = pytest.mark.skipif(not all(shutil.which(t) for t in TOOLS),
                                     reason="needs g++-aarch64-linux-gnu, qemu-user, mmdebstrap")  # fmt: skip


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
    model = onnx.load(art / "model.onnx")
    init = next(i for i in model.graph.initializer if i.name.endswith(".values"))
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * np.float32(1.5), init.name))
    onnx.save(model, art / "model.onnx")
    code, out, _ = run_cli(["verify", art], capsys)
    assert code == 1 and "FAIL sample" in out and out.strip().endswith("FAIL")


def test_verify_refuses_another_checkpoint(checkpoint, tmp_path, capsys):
    compile_artifact(CompileRequest(checkpoint, "host", tmp_path / "a"))
    other = tmp_path / "other.ept"
    other.write_bytes(checkpoint.read_bytes() + b" ")
    code, _, err = run_cli(["verify", tmp_path / "a", "--checkpoint", other], capsys)
    assert code == 2 and "not the checkpoint this artifact was compiled from" in err
