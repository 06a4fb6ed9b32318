"""Target files: every shipped board loads and says what the issue asks of it; families, user
directories and malformed files; compiling for a board cross-builds the library for it."""

import json
import shutil

import pytest
from conftest import run_cli

from edgeprune.errors import UserError
from edgeprune.targets import known_targets, load_target

BOARDS = ["jetson-orin-nano", "jetson-orin-nx", "jetson-agx-orin", "jetson-xavier-nx", "jetson-nano", "rpi4", "rpi5",
          "aarch64-generic"]  # fmt: skip


def test_every_board_is_shipped_with_cpu_qemu_sensors_and_an_unmeasured_table():
    assert set(BOARDS) | {"host"} <= set(known_targets())
    for name in BOARDS:
        t = load_target(name)
        assert t.cpu.arch == "aarch64" and t.cpu.flags and t.cpu.qemu_cpu and t.cpu.cross_package
        assert t.library == "cross" and t.power.sensor
        table = json.loads(t.calibration_path.read_text())
        assert table["measured"] is False and "not measured on the board" in table["note"]
    assert json.loads(load_target("host").calibration_path.read_text())["measured"] is True


def test_jetson_gpus_and_their_device_compilers():
    assert load_target("jetson-orin-nano").gpu.cuda_arch == "sm_87"
    assert load_target("jetson-orin-nano").gpu.device_compiler == "nvcc"
    assert load_target("jetson-xavier-nx").gpu.cuda_arch == "sm_72"
    assert load_target("jetson-nano").gpu.device_compiler == "nvrtc-12"
    assert load_target("rpi4").gpu is None
    # armv8.0 boards are emulated with a CPU that traps later instructions
    assert load_target("rpi4").cpu.qemu_cpu == "cortex-a57" and load_target("jetson-nano").cpu.qemu_cpu == "cortex-a57"


def test_families_resolve_to_their_default_board():
    assert load_target("jetson").name == "jetson-orin-nano"
    assert load_target("rpi").name == "rpi5"


def test_a_users_own_board_and_malformed_files(tmp_path, monkeypatch):
    text = load_target("rpi4").path.read_text().replace('name = "rpi4"', 'name = "myboard"')
    (tmp_path / "myboard.toml").write_text(text)
    assert load_target("myboard", tmp_path).cpu.mcpu == "cortex-a72"
    monkeypatch.setenv("EDGEPRUNE_TARGETS_PATH", str(tmp_path))
    assert "myboard" in known_targets()
    (tmp_path / "myboard.toml").write_text(text.replace("threads = 4", 'threads = "four"'))
    with pytest.raises(UserError, match="field cpu.threads must be an integer"):
        load_target("myboard")
    (tmp_path / "myboard.toml").write_text(text.replace('qemu_cpu = "cortex-a57"\n', ""))
    with pytest.raises(UserError, match="missing field cpu.qemu_cpu"):
        load_target("myboard")
    with pytest.raises(UserError, match="unknown target 'nope'; known targets: .*rpi4"):
        load_target("nope")


def test_targets_cli_lists_and_shows(capsys):
    code, out, _ = run_cli(["targets", "--json"], capsys)
    assert code == 0 and {t["name"] for t in json.loads(out)["targets"]} >= set(BOARDS)
    code, out, _ = run_cli(["targets", "show", "jetson", "--json"], capsys)
    assert code == 0 and json.loads(out)["gpu"]["cuda_arch"] == "sm_87"
    code, _, err = run_cli(["targets", "show", "nope"], capsys)
    assert code == 2 and "unknown target 'nope'" in err


@pytest.fixture(scope="module")
def nm_checkpoint(tmp_path_factory):
    from edgeprune.prune.pipeline import PruneRequest, prune, write_checkpoint

    path = tmp_path_factory.mktemp("nm") / "nm.ept"
    write_checkpoint(prune(PruneRequest("digits", "nm", None, evaluate_before=False)), path)
    return path


needs_cross = pytest.mark.skipif(shutil.which("aarch64-linux-gnu-g++") is None, reason="needs g++-aarch64-linux-gnu")


@needs_cross
def test_compile_for_a_jetson_cross_builds_and_records_the_tensorrt_path(nm_checkpoint, tmp_path, capsys):
    art = tmp_path / "jetson"
    code, out, err = run_cli(["compile", nm_checkpoint, "--target", "jetson", "-o", art], capsys)
    assert code == 0, err
    from edgeprune.contracts.manifest import Manifest

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
