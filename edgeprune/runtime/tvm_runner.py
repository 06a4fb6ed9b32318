"""Runs a TVM artifact: ``model.so`` (the Relax module with our sparse kernels linked in) and
``dense.so`` (its dense baseline), loaded with the TVM runtime alone: tvm-ffi and
``libtvm_runtime.so``, never TVM's compiler, torch or onnxruntime. Every file is checked against
the manifest before it is loaded, and a module for another CPU is refused before it is opened."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.contracts.manifest import Manifest
from edgeprune.errors import UserError, one_line
from edgeprune.runtime import tvm_module
from edgeprune.runtime.artifact_files import checked_path
from edgeprune.runtime.elf import elf_arch, host_arch

INSTALL = "pip install 'edgeprune[tvm]'"


def runtime_library() -> Path:
    """``libtvm_runtime.so``: ``EDGEPRUNE_TVM_RUNTIME``, else the one the apache-tvm package ships
    (found from its installed files: importing ``tvm`` would load the compiler)."""
    env = os.environ.get("EDGEPRUNE_TVM_RUNTIME")
    if env:
        return Path(env)
    try:
        path = Path(str(importlib.metadata.distribution("apache-tvm").locate_file("tvm/lib/libtvm_runtime.so")))
    except importlib.metadata.PackageNotFoundError:
        raise UserError(f"this artifact is a TVM module and the TVM runtime is not installed: {INSTALL}") from None
    if not path.is_file():
        raise UserError(f"the TVM runtime is missing from the apache-tvm install ({path}); reinstall it: {INSTALL}")
    return path


def _load_runtime() -> None:
    try:
        import tvm_ffi  # noqa: F401
    except ImportError:
        raise UserError(f"this artifact is a TVM module and tvm-ffi is not installed: {INSTALL}") from None
    lib = runtime_library()
    try:
        tvm_module.load_runtime(str(lib))
    except OSError as exc:
        raise UserError(f"the TVM runtime {lib} cannot be loaded: {one_line(exc)}") from None


@dataclasses.dataclass
class TvmModule:
    """A loaded module library: its VM's ``main`` on one input."""

    library: Any  # tvm_ffi.Module
    main: Any
    path: Path

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        try:
            return tvm_module.run(self.main, x)
        except Exception as exc:  # noqa: BLE001 - the VM raises tvm-ffi's error types
            raise UserError(f"{self.path.name} failed to run: {one_line(exc, 300)}") from None

    def kernels_isa(self) -> str:
        """The instruction set of the kernels linked into the module, after checking their ABI."""
        from edgeprune.runtime.kernel_library import ABI_VERSION

        try:
            get = self.library.get_function  # the functions live in the library the loaded module imports
            abi = int(get("edgeprune_abi_version", query_imports=True)())
            isa = str(get("edgeprune_isa_name", query_imports=True)())
        except Exception:  # noqa: BLE001 - a missing function is tvm-ffi's AttributeError or its own error
            raise UserError(f"{self.path.name} does not carry edgeprune's kernels (no edgeprune_abi_version)") from None
        if abi != ABI_VERSION:
            raise UserError(f"{self.path.name} has kernel ABI {abi}; this edgeprune reads ABI {ABI_VERSION}: recompile")
        if isa == "none":
            raise UserError(f"{self.path.name}: its kernels have no instruction set this CPU runs: "
                            "compile for this target")  # fmt: skip
        return isa


@dataclasses.dataclass
class TvmRunner:
    module: TvmModule
    input_name: str
    shape: tuple[int, ...]
    isa: str  # of our kernels in the module, "none" for a module without them

    def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        x = feed[self.input_name]
        if x.dtype != np.float32:
            raise UserError(f"{self.module.path.name} takes float32 input, not {x.dtype}")
        if tuple(x.shape) != self.shape:
            raise UserError(f"{self.module.path.name} was compiled for input shape {list(self.shape)}, not "
                            f"{list(x.shape)} (a TVM module has a fixed batch)")  # fmt: skip
        return self.module.run(x)


def load_module(path: Path, threads: int) -> TvmModule:
    """A module library loaded with the TVM runtime; one for another CPU is refused unopened.
    ``threads`` sizes the runtime's thread pool (one per process)."""
    arch = elf_arch(path)
    if arch != host_arch():
        raise UserError(f"{path.name} is a TVM module for {arch}; this machine is {host_arch()}: "
                        "bench it on the board")  # fmt: skip
    _load_runtime()
    try:
        tvm_module.set_threads(threads)
    except RuntimeError as exc:
        raise UserError(f"--threads {threads}: {exc}") from None
    try:
        return TvmModule(*tvm_module.load(str(path)), path)
    except Exception as exc:  # noqa: BLE001 - tvm-ffi's error types
        raise UserError(f"{path.name} is not a loadable TVM module: {one_line(exc, 300)}") from None


def open_tvm(artifact: Path, manifest: Manifest, role: str, threads: int) -> TvmRunner:
    module = load_module(checked_path(artifact, manifest, role), threads)
    # our kernels are linked into the sparse module
    isa = module.kernels_isa() if role == "model" and manifest.library is not None else "none"
    inp = manifest.inputs[0]
    shape = tuple(int(d) if isinstance(d, int) else 1 for d in inp.shape)
    return TvmRunner(module, inp.name, shape, isa)
