"""Board targets through the CLI: targets lists and shows them; compiling for a board
cross-builds the kernel library for it (and records the TensorRT path of a Jetson) or names the
missing cross compiler's package; calibrate refuses to measure a board from another machine."""

import json
import shutil

import pytest
from helpers import BOARDS, run_cli

from edgeprune.contracts.manifest import Manifest
from edgeprune.targets import load_target


def test_targets_cli_lists_and_shows(capsys):
    code, out, _ = run_cli(["targets", "--json"], capsys)
    assert code == 0 and {t["name"] for t in json.loads(out)["targets"]} >= set(BOARDS)
    code, out, _ = run_cli(["targets", "show", "jetson", "--json"], capsys)
    assert code == 0 and json.loads(out)["gpu"]["cuda_arch"] == "sm_87"
    code, _, err = run_cli(["targets", "show", "nope"], capsys)
    assert code == 2 and "unknown target 'nope'" in err


@pytest.fixture
def nm_checkpoint(checkpoints):
    return checkpoints("digits", "nm", None)


needs_cross = pytest.mark.skipif(shutil.which("aarch64-linux-gnu-g++") is None, reason="needs g++-aarch64-linux-gnu")


@needs_cross
def test_compile_for_a_jetson_cross_builds_and_records_the_tensorrt_path(nm_checkpoint, tmp_path, capsys):
    art = tmp_path / "jetson"
    code, out, err = run_cli(["compile", nm_checkpoint, "--target", "jetson", "-o", art], capsys)
    assert code == 0, err
    manifest = Manifest.read(art)
    assert manifest.target.name == "jetson-orin-nano" and manifest.library.arch == "aarch64"
    assert manifest.target.cpu_flags == ["-mcpu=cortex-a78ae"]
    assert (art / "libedgeprune_ort.so").read_bytes()[18] == 183  # ELF machine: aarch64
    trt = manifest.gpu.tensorrt
    assert trt["onnx"] == "dense.onnx" and "--sparsity=enable" in trt["build"] and trt["sparse_tensor_cores"]
    assert manifest.check.max_rel_error_with_library is None and "verify" in manifest.check.with_library
    # The artifact cannot run here: bench says why instead of loading it.
    code, _, err = run_cli(["bench", art, "--seconds", "0.1"], capsys)
    assert code == 2 and "built for aarch64; this machine is x86_64" in err


def test_missing_cross_compiler_names_the_package(nm_checkpoint, tmp_path, capsys):
    text = load_target("rpi4").path.read_text().replace('name = "rpi4"', 'name = "odd"')
    text = text.replace('cross_compiler = "aarch64-linux-gnu-g++"', 'cross_compiler = "no-such-g++"')
    (tmp_path / "odd.toml").write_text(text.replace("calibration/rpi4.json", str(load_target("rpi4").calibration_path)))
    code, _, err = run_cli(["compile", nm_checkpoint, "--target", "odd", "--targets-dir", tmp_path, "-o",
                            tmp_path / "o"], capsys)  # fmt: skip
    assert code == 2 and "no-such-g++ not found; install it: apt-get install g++-aarch64-linux-gnu" in err
    assert not (tmp_path / "o").exists()


def test_calibrate_refuses_to_measure_a_board_from_another_machine(capsys):
    code, _, err = run_cli(["calibrate", "--target", "rpi4"], capsys)
    assert code == 2 and "run it on the rpi4 board" in err
