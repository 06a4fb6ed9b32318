"""The C++ kernel library: every instruction-set path against the portable reference (the
kernels' own test program, built here with CMake), the NEON path under qemu-aarch64, and the
run-time selection of the instruction set."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

KERNELS = Path(__file__).resolve().parent.parent / "kernels"
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


def isa_of(env_isa):
    code = ("from edgeprune.runtime.kernel_library import check_library, host_library; "
            "print(check_library(host_library()))")
    env = {**os.environ, "EDGEPRUNE_ISA": env_isa}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)


def test_forcing_an_instruction_set():
    done = isa_of("portable")
    assert done.returncode == 0 and done.stdout.strip() == "portable"
    done = isa_of("sse9")
    assert done.returncode != 0 and "EDGEPRUNE_ISA=sse9 is not one of" in done.stderr
