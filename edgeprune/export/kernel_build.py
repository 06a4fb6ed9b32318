"""Build the kernel library for a target's CPU: CMake with the aarch64 toolchain file, the
board's ``-mcpu``/``-march`` for every source, the NEON path. Builds are cached by target and
source hash (``EDGEPRUNE_CACHE``), so compiling many models for one board builds once."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from edgeprune.errors import UserError
from edgeprune.fsio import cache_dir
from edgeprune.runtime.kernel_library import LIBRARY_NAME
from edgeprune.targets import Target

KERNELS = Path(__file__).resolve().parent.parent.parent / "kernels"


def _sources_hash() -> str:
    h = hashlib.sha256()
    for f in sorted(KERNELS.rglob("*")):
        if f.is_file() and "third_party" not in f.parts and f.suffix in (".cpp", ".h", ".inl", ".txt", ".cmake"):
            h.update(str(f.relative_to(KERNELS)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def ort_headers() -> Path:
    """ONNX Runtime headers: ORT_INCLUDE_DIR, else the ones pip install fetched."""
    env = os.environ.get("ORT_INCLUDE_DIR")
    path = Path(env) if env else KERNELS / "third_party" / "onnxruntime"
    if not (path / "onnxruntime_lite_custom_op.h").is_file():
        subprocess.run(["bash", str(KERNELS / "fetch_ort_headers.sh")], check=False, capture_output=True)
    if not (path / "onnxruntime_lite_custom_op.h").is_file():
        raise UserError(f"onnxruntime headers not found in {path}; set ORT_INCLUDE_DIR or run "
                        "kernels/fetch_ort_headers.sh")  # fmt: skip
    return path


def cross_library(target: Target) -> Path:
    """The ONNX Runtime kernel library built for ``target`` (cached)."""
    built = cmake_build(target, [f"-DORT_INCLUDE_DIR={ort_headers()}"], [LIBRARY_NAME], "the kernel library")
    return built / LIBRARY_NAME


def cmake_build(target: Target | None, options: list[str], products: list[str], what: str) -> Path:
    """The directory holding ``products`` of a CMake build of ``kernels/`` for ``target`` (None:
    this machine) with extra ``options``, cached by target, options and source hash."""
    if not (KERNELS / "CMakeLists.txt").is_file():
        raise UserError(f"kernel sources not found at {KERNELS}; building {what} needs a source checkout")
    if target is not None and shutil.which(target.cpu.cross_compiler) is None:
        raise UserError(f"cross compiler {target.cpu.cross_compiler} not found; install it: "
                        f"apt-get install {target.cpu.cross_package}")  # fmt: skip
    if shutil.which("cmake") is None:
        raise UserError("cmake not found; install it: apt-get install cmake")
    config = ["-DCMAKE_BUILD_TYPE=Release", "-DEP_BUILD_TESTS=OFF", *options]
    if target is not None:
        config += [f"-DCMAKE_TOOLCHAIN_FILE={KERNELS / 'cmake' / 'aarch64-linux-gnu.cmake'}",
                   f"-DCMAKE_CXX_COMPILER={target.cpu.cross_compiler}", f"-DEP_CPU_FLAGS={' '.join(target.cpu.flags)}"]
    where = target.cpu.triple if target is not None else "host"
    key = hashlib.sha256(f"{where} {' '.join(config)} {_sources_hash()}".encode()).hexdigest()[:16]
    out = cache_dir() / "kernels" / f"{target.name if target else 'host'}-{key}"
    if all((out / p).is_file() for p in products):
        return out
    with tempfile.TemporaryDirectory() as build:
        for cmd in (["cmake", "-S", str(KERNELS), "-B", build, *config],
                    ["cmake", "--build", build, "-j", str(os.cpu_count() or 2)]):  # fmt: skip
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
                raise UserError(f"building {what} for {target.name if target else 'this machine'} failed: {tail[0]}")
        out.mkdir(parents=True, exist_ok=True)
        for p in products:
            tmp = out / f".{p}.tmp"
            shutil.copy2(Path(build) / p, tmp)
            tmp.replace(out / p)
    return out
