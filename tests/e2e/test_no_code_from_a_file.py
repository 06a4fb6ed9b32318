"""Issue 15, finding 1: a checkpoint whose metadata named ``/tmp/evil.py:W`` made inspect,
evaluate, compile and verify import and run that file, and ``os:abort`` killed the process
(exit 134). Now nothing a checkpoint names is imported: compile and verify read the graph the
checkpoint carries, and inspect and evaluate ask for ``--workload`` with the name as a hint."""

import json
import subprocess
import sys

import pytest
from helpers import DIGITS_90, run_cli
from safetensors import safe_open
from safetensors.torch import save_file

EVIL = """
from pathlib import Path
Path(__file__).with_name("ran").write_text("the checkpoint's workload file was imported")
W = None
"""


def naming(checkpoints, tmp_path, workload):
    """A private copy of the 90% digits checkpoint whose metadata names ``workload``."""
    ckpt = checkpoints.copy(tmp_path / "named.ept", **DIGITS_90)
    with safe_open(str(ckpt), framework="pt") as fh:
        meta = json.loads(fh.metadata()["edgeprune"])
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    meta["workload"] = workload
    save_file(tensors, str(ckpt), metadata={"edgeprune": json.dumps(meta)})
    return ckpt


def test_a_workload_file_a_checkpoint_names_is_never_imported(checkpoints, tmp_path, capsys):
    evil = tmp_path / "evil.py"
    evil.write_text(EVIL)
    ckpt = naming(checkpoints, tmp_path, f"{evil}:W")
    code, _, err = run_cli(["compile", ckpt, "-o", tmp_path / "art"], capsys)
    assert code == 0, err
    code, _, err = run_cli(["verify", tmp_path / "art"], capsys)
    assert code == 0, err
    for command in ("inspect", "evaluate"):
        code, _, err = run_cli([command, ckpt], capsys)
        assert code == 2 and f"'{evil}:W', which is not built in" in " ".join(err.split()), err
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("command", ["compile", "evaluate"])
def test_a_module_a_checkpoint_names_is_never_called(command, checkpoints, tmp_path):
    """``os:abort`` killed the process with exit 134; in a subprocess, so it cannot kill pytest."""
    ckpt = naming(checkpoints, tmp_path, "os:abort")
    args = ["compile", str(ckpt), "-o", str(tmp_path / "art")] if command == "compile" else ["evaluate", str(ckpt)]
    proc = subprocess.run([sys.executable, "-m", "edgeprune", *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == (0 if command == "compile" else 2), proc.stderr
    assert command == "compile" or "'os:abort', which is not built in" in " ".join(proc.stderr.split())
