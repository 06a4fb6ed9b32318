"""Builds the host kernel library (kernels/, CMake) into edgeprune/_native during pip install.

Everything else about the package is in pyproject.toml. The ONNX Runtime headers come from
``ORT_INCLUDE_DIR`` or, failing that, from ``kernels/fetch_ort_headers.sh``.
``EDGEPRUNE_SKIP_KERNELS=1`` skips the build (a board's runtime uses the artifact's library).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
KERNELS = ROOT / "kernels"
LIBRARY = "libedgeprune_ort.so"


class CMakeBuild(build_ext):
    def get_ext_filename(self, fullname: str) -> str:
        # A plain shared library that onnxruntime loads, not a Python extension module.
        return str(Path(*fullname.split(".")[:-1]) / LIBRARY)

    def build_extension(self, ext: Extension) -> None:
        if os.environ.get("EDGEPRUNE_SKIP_KERNELS") == "1":
            return  # a board's runtime: artifacts carry their own library
        if shutil.which("cmake") is None:
            raise RuntimeError("building edgeprune's kernels needs cmake (apt-get install cmake g++)")
        headers = os.environ.get("ORT_INCLUDE_DIR", "")
        if not headers:
            subprocess.run(["bash", str(KERNELS / "fetch_ort_headers.sh")], check=True)
            headers = str(KERNELS / "third_party" / "onnxruntime")
        dest = Path(self.get_ext_fullpath(ext.name)).parent
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as build:
            configure = ["cmake", "-S", str(KERNELS), "-B", build, f"-DORT_INCLUDE_DIR={headers}",
                         "-DEP_BUILD_TESTS=OFF", "-DCMAKE_BUILD_TYPE=Release"]  # fmt: skip
            subprocess.run(configure, check=True, stdout=subprocess.DEVNULL)
            subprocess.run(["cmake", "--build", build, "-j", str(os.cpu_count() or 2)], check=True)
            tmp = dest / (LIBRARY + ".tmp")
            shutil.copy2(Path(build) / LIBRARY, tmp)
            tmp.replace(dest / LIBRARY)


setup(ext_modules=[Extension("edgeprune._native.edgeprune_ort", sources=[])], cmdclass={"build_ext": CMakeBuild})
