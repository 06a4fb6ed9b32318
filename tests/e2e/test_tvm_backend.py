"""`compile --backend tvm`: a TVM module with our kernels linked in and its dense baseline module,
checked against ONNX Runtime at compile time, benched with the TVM runtime alone (no TVM
compiler, no PyTorch, no onnxruntime in the process), and every bad input one line, exit 2."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import DIGITS_90, RESNET90, cli_without, run_cli

import edgeprune.targets
from edgeprune.contracts.manifest import MANIFEST, Manifest
from edgeprune.errors import UserError
from edgeprune.export.compile import CompileRequest, compile_artifact
from edgeprune.fsio import sha256_file
from edgeprune.runtime.runner import open_runner

pytest.importorskip("tvm", reason="the TVM backend's tests need apache-tvm (pip install -e '.[dev]')")
BOARDS_DIR = Path(edgeprune.targets.__file__).parent


def test_the_module_runs_our_kernels_and_matches_onnx_runtime(tvm_artifact):
    m = Manifest.read(tvm_artifact)
    assert m.backend == "tvm" and set(m.files) == {"model", "dense"}
    assert m.files["model"].path == "model.so" and m.library is not None and m.library.file == "model.so"
    formats = {r.format for r in m.layers}
    assert "csr" in formats and formats <= {"csr", "bsr", "shrunk"}, formats  # every conv of digits at 90% runs sparse
    assert m.inputs[0].shape[0] == 1  # a TVM module has a fixed batch
    # both modules against the dense ONNX model, run at compile time
    assert m.check.max_rel_error_with_library < 1e-5 and m.check.max_rel_error_dense_module < 1e-5
    assert m.check.max_rel_error_fallback is None


@pytest.fixture(scope="module")
def runtime_only(tmp_path_factory):
    """The CLI in a process where torch, TVM's compiler and onnxruntime cannot be imported."""
    return cli_without(tmp_path_factory.mktemp("tvm_runtime_only"), "torch", "tvm", "onnxruntime")


def test_bench_runs_the_module_with_the_tvm_runtime_alone(runtime_only, tvm_artifact, tmp_path):
    # more threads than this machine has cores: TVM caps its pool, the run goes on
    done = runtime_only("bench", tvm_artifact, "--seconds", "0.2", "--threads", "4", "--json", "-o",
                        tmp_path / "r.json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    res = json.loads(done.stdout)
    assert res["threads"] == 4
    assert res["latency"]["sparse"]["runs"] >= 30 and res["latency"]["dense"]["runs"] >= 30
    assert res["device"]["isa"] not in ("none", "")  # the kernels linked into the module found their ISA
    assert max(res["agreement"]["max_rel_error_vs_dense"].values()) < 1e-4
    assert res["memory"]["sparse_peak_rss_mib"] is not None  # the memory probe loads modules too


def test_verify_runs_the_module_with_the_tvm_runtime_alone(runtime_only, tvm_artifact):
    done = runtime_only("verify", tvm_artifact, "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["passed"] and doc["ran"] == "native" and "dense.so on tvm" in doc["reference"]


def test_the_runner_refuses_another_batch(tvm_artifact):
    runner = open_runner(tvm_artifact, Manifest.read(tvm_artifact), "model", threads=1)
    x = np.zeros([2, *Manifest.read(tvm_artifact).inputs[0].shape[1:]], np.float32)
    with pytest.raises(UserError, match="fixed batch"):
        runner.run({runner.input_name: x})


def test_one_process_runs_modules_with_one_thread_count(tvm_artifact):
    """TVM's thread pool is made once per process: a second count is refused, not silently ignored."""
    script = ("import sys; from pathlib import Path; from edgeprune.contracts.manifest import Manifest;"
              "from edgeprune.runtime.runner import open_runner; from edgeprune.errors import UserError;"
              "a = Path(sys.argv[1]); m = Manifest.read(a); open_runner(a, m, 'model', 1)\n"
              "try:\n    open_runner(a, m, 'dense', 2)\nexcept UserError as e:\n    print(e)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", script, str(tvm_artifact)], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "--threads 2: this process already runs TVM modules with 1 threads" in done.stdout


def test_a_changed_module_is_refused_before_it_is_loaded(tvm_artifact, tmp_path, capsys):
    art = shutil.copytree(tvm_artifact, tmp_path / "art")
    with (art / "model.so").open("ab") as fh:
        fh.write(b"\0")
    code, _, err = run_cli(["bench", art, "--seconds", "0.1"], capsys)
    assert code == 2 and "model.so" in err and "compile it again" in err


def test_without_tvm_the_backend_says_what_to_install(tmp_path_factory, checkpoints, tmp_path):
    run = cli_without(tmp_path_factory.mktemp("no_tvm"), "tvm")
    done = run("compile", checkpoints(**DIGITS_90), "--backend", "tvm", "-o", tmp_path / "art")
    assert done.returncode == 2 and "pip install 'edgeprune[tvm]'" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "art").exists()


TOOLS = ("aarch64-linux-gnu-g++", "qemu-aarch64", "mmdebstrap", "unshare")
needs_emulation = pytest.mark.skipif(not all(shutil.which(t) for t in TOOLS),
                                     reason="needs g++-aarch64-linux-gnu, qemu-user, mmdebstrap")  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("model", ["mtl-resnet", "mtl-lite0"])
def test_the_workload_models_compile_and_match_the_checkpoint_on_the_host(model, checkpoints, tmp_path, capsys):
    """The checkpoint's graph (checked against PyTorch when it was pruned) is verify's reference."""
    ckpt = checkpoints(**{**RESNET90, "model": model})
    compile_artifact(CompileRequest(ckpt, "host", tmp_path / "art", backend="tvm"))
    code, out, err = run_cli(["verify", tmp_path / "art", "--json"], capsys)
    doc = json.loads(out)
    assert code == 0 and doc["passed"] and doc["ran"] == "native", err
    formats = {r.format for r in Manifest.read(tmp_path / "art").layers}
    assert formats & {"csr", "bsr", "nm"}  # some layers run our kernels inside the module


@pytest.mark.slow
@needs_emulation
@pytest.mark.parametrize(("board", "cpu"), [("rpi4", "cortex-a57"), ("jetson-orin-nano", "cortex-a76")])
def test_a_board_module_is_cross_compiled_and_verifies_under_emulation(board, cpu, checkpoints, tmp_path, capsys):
    art = tmp_path / "art"
    manifest = compile_artifact(CompileRequest(checkpoints(**DIGITS_90), board, art, backend="tvm"))
    assert manifest.library is not None and manifest.library.arch == "aarch64"
    assert manifest.check.max_rel_error_with_library is None and "verify" in manifest.check.with_library
    code, out, err = run_cli(["verify", art, "--json"], capsys)
    doc = json.loads(out)
    assert code == 0 and doc["passed"] and doc["ran"] == f"qemu-aarch64 -cpu {cpu}", err
    # an aarch64 module is refused on this machine before it is loaded
    code, _, err = run_cli(["bench", art, "--seconds", "0.1"], capsys)
    assert code == 2 and "for aarch64" in err


def test_a_module_that_is_not_a_library_is_one_line_even_when_its_hash_matches(tvm_artifact, tmp_path, capsys):
    """A bad compile (the manifest describes the file it wrote): refused when loaded, one line."""
    art = shutil.copytree(tvm_artifact, tmp_path / "art")
    (art / "model.so").write_bytes(b"\x7fELF" + bytes([2, 1, 1]) + bytes(11) + (62).to_bytes(2, "little") + bytes(64))
    doc = json.loads((art / MANIFEST).read_text())
    doc["files"]["model"].update(sha256=sha256_file(art / "model.so"), bytes=(art / "model.so").stat().st_size)
    (art / MANIFEST).write_text(json.dumps(doc))
    code, _, err = run_cli(["bench", art, "--seconds", "0.1"], capsys)
    assert code == 2 and "model.so is not a loadable TVM module" in err and len(err.strip().splitlines()) == 1


def test_a_cpu_tvm_cannot_build_for_is_refused_before_any_work(checkpoints, tmp_path, capsys):
    targets = tmp_path / "targets"
    (targets / "calibration").mkdir(parents=True)
    rpi4 = (BOARDS_DIR / "rpi4.toml").read_text()
    (targets / "odd.toml").write_text(rpi4.replace('name = "rpi4"', 'name = "odd"').replace("cortex-a72", "cortex-z99"))
    shutil.copy(BOARDS_DIR / "calibration" / "rpi4.json", targets / "calibration")
    code, _, err = run_cli(["compile", checkpoints(**DIGITS_90), "--backend", "tvm", "--target", "odd",
                            "--targets-dir", targets, "-o", tmp_path / "art"], capsys)  # fmt: skip
    assert code == 2 and "does not know CPU 'cortex-z99'" in err and not (tmp_path / "art").exists()
