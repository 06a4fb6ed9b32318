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
    """The kernel library built for ``target`` (cached)."""
    if not (KERNELS / "CMakeLists.txt").is_file():
        raise UserError(f"kernel sources not found at {KERNELS}; cross-compiling needs a source checkout")
    if shutil.which(target.cpu.cross_compiler) is None:
        raise UserError(f"cross compiler {target.cpu.cross_compiler} not found; install it: "
                        f"apt-get install {target.cpu.cross_package}")  # fmt: skip
    if shutil.which("cmake") is None:
        raise UserError("cmake not found; install it: apt-get install cmake")
    flags = " ".join(target.cpu.flags)
    key = hashlib.sha256(f"{target.cpu.triple} {target.cpu.cross_compiler} {flags} {_sources_hash()}".encode())
    out = cache_dir() / "kernels" / f"{target.name}-{key.hexdigest()[:16]}" / LIBRARY_NAME
    if out.is_file():
        return out
    headers = ort_headers()
    with tempfile.TemporaryDirectory() as build:
        configure = ["cmake", "-S", str(KERNELS), "-B", build, "-DCMAKE_BUILD_TYPE=Release", "-DEP_BUILD_TESTS=OFF",
                     f"-DCMAKE_TOOLCHAIN_FILE={KERNELS / 'cmake' / 'aarch64-linux-gnu.cmake'}",
                     f"-DCMAKE_CXX_COMPILER={target.cpu.cross_compiler}", f"-DEP_CPU_FLAGS={flags}",
                     f"-DORT_INCLUDE_DIR={headers}"]  # fmt: skip
        for cmd in (configure, ["cmake", "--build", build, "-j", str(os.cpu_count() or 2)]):
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
                raise UserError(f"building the kernel library for {target.name} failed: {tail[0]}")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        shutil.copy2(Path(build) / LIBRARY_NAME, tmp)
        tmp.replace(out)
    return out
