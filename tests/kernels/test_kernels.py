"""The C++ kernels (kernels/): every instruction-set path against the portable reference (the
kernels' own test program, kernels/tests/test_kernels.cpp, built here with CMake) and the NEON
path under qemu-aarch64."""

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each builds the kernels with CMake: 5-10 s

KERNELS = Path(__file__).resolve().parents[2] / "kernels"
CROSS = ("aarch64-linux-gnu-g++", "qemu-aarch64")


def build(tmp: Path, *extra: str) -> Path:
    subprocess.run(["cmake", "-S", KERNELS, "-B", tmp, "-DEP_BUILD_ORT=OFF", *extra], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", tmp, "-j", "2"], check=True, capture_output=True)
    return tmp / "ep_kernel_tests"


def test_every_host_path_matches_the_reference(tmp_path):
    exe = build(tmp_path)
    done = subprocess.run([exe, "200"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:]
    last = done.stdout.strip().splitlines()[-1]
    assert last.endswith(" 0 failed") and int(last.split()[0]) > 0
    # This AVX-512 machine runs the AVX2 path too (the test walks every available path).
    if "avx512" in Path("/proc/cpuinfo").read_text():
        assert "skip avx2" not in done.stdout and "skip avx512" not in done.stdout


@pytest.mark.skipif(not all(shutil.which(t) for t in CROSS), reason="needs gcc-aarch64-linux-gnu and qemu-user")
@pytest.mark.parametrize("cpu", ["cortex-a57", "cortex-a76"])
def test_neon_path_under_qemu_matches_the_reference(tmp_path, cpu):
    exe = build(tmp_path, f"-DCMAKE_TOOLCHAIN_FILE={KERNELS / 'cmake' / 'aarch64-linux-gnu.cmake'}",
                f"-DEP_CPU_FLAGS=-mcpu={cpu}")  # fmt: skip
    done = subprocess.run(["qemu-aarch64", "-cpu", cpu, "-L", "/usr/aarch64-linux-gnu", exe, "80"],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:]
    assert "skip neon" not in done.stdout
    assert done.stdout.strip().splitlines()[-1].endswith(" 0 failed")
