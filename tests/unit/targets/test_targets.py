"""targets: every shipped board loads and says what the issue asks of it; families, user
directories and malformed files."""

import json

import pytest
from helpers import BOARDS

from edgeprune.errors import UserError
from edgeprune.targets import known_targets, load_target


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


def test_a_gpu_architecture_that_is_not_one_is_refused_by_name(tmp_path):
    text = load_target("jetson-orin-nano").path.read_text().replace('name = "jetson-orin-nano"', 'name = "odd"')
    (tmp_path / "odd.toml").write_text(text.replace('cuda_arch = "sm_87"', 'cuda_arch = "ampere"'))
    with pytest.raises(UserError, match="field gpu.cuda_arch must name a CUDA architecture like sm_87, not 'ampere'"):
        load_target("odd", tmp_path)
