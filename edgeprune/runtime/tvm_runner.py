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


def cuda_runtime_library() -> Path:
    """``libtvm_runtime_cuda.so``: ``EDGEPRUNE_TVM_RUNTIME_CUDA``, else the one beside
    :func:`runtime_library` (the apache-tvm wheel's needs the CUDA 13 runtime; on a Jetson with
    an older CUDA, build TVM's runtime there with USE_CUDA=ON and point the variable at it)."""
    env = os.environ.get("EDGEPRUNE_TVM_RUNTIME_CUDA")
    return Path(env) if env else runtime_library().with_name("libtvm_runtime_cuda.so")


def cuda_unavailable() -> str | None:
    """Why this machine cannot run TVM modules on a GPU, or None when it can (the TVM runtime
    and its CUDA support are then loaded)."""
    _load_runtime()
    lib = cuda_runtime_library()
    if not lib.is_file():
        return f"the TVM runtime's CUDA support ({lib}) is not installed"
    try:
        devices = tvm_module.load_cuda_runtime(str(lib))
    except OSError as exc:  # most often: no libcuda.so.1, the driver of a machine with an NVIDIA GPU
        return f"{lib.name} cannot be loaded: {one_line(exc, 200)}"
    return None if devices else "no CUDA device here"


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
    device: int = tvm_module.CPU

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        try:
            return tvm_module.run(self.main, x, self.device)
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


def _refuse_other_arch(path: Path) -> None:
    arch = elf_arch(path)
    if arch != host_arch():
        raise UserError(f"{path.name} is a TVM module for {arch}; this machine is {host_arch()}: "
                        "bench it on the board")  # fmt: skip


def load_module(path: Path, threads: int, device: int = tvm_module.CPU) -> TvmModule:
    """A module library loaded with the TVM runtime; one for another CPU is refused unopened.
    ``threads`` sizes the runtime's thread pool (one per process). For a GPU module, the CUDA
    runtime must be loaded and its code given first (:func:`open_tvm` does both)."""
    _refuse_other_arch(path)
    _load_runtime()
    try:
        tvm_module.set_threads(threads)
    except RuntimeError as exc:
        raise UserError(f"--threads {threads}: {exc}") from None
    try:
        return TvmModule(*tvm_module.load(str(path), device), path, device)
    except Exception as exc:  # noqa: BLE001 - tvm-ffi's error types
        raise UserError(f"{path.name} is not a loadable TVM module: {one_line(exc, 300)}") from None


def open_tvm(artifact: Path, manifest: Manifest, role: str, threads: int) -> TvmRunner:
    """The module of ``role``: ``model`` and ``dense`` run on the CPU, ``gpu_model`` and
    ``gpu_dense`` on CUDA device 0."""
    gpu = manifest.gpu if role.startswith("gpu_") else None
    if role.startswith("gpu_") and (gpu is None or role.removeprefix("gpu_") not in gpu.modules):
        raise UserError(f"{artifact} has no GPU modules: compile it with --backend tvm for a board with a GPU")
    path = checked_path(artifact, manifest, role)
    device = tvm_module.CPU
    if gpu is not None:
        _refuse_other_arch(path)  # before asking for a GPU: a board's module is refused by its architecture
        why = cuda_unavailable()
        if why is not None:
            raise UserError(f"{path.name} runs on a GPU: {why}")
        spec = gpu.modules[role.removeprefix("gpu_")]
        tvm_module.use_cuda_code(spec.source_sha256, checked_path(artifact, manifest, spec.code).read_bytes())
        device = tvm_module.CUDA
    module = load_module(path, threads, device)
    # our kernels are linked into the sparse module
    isa = module.kernels_isa() if role == "model" and manifest.library is not None else "none"
    if role == "gpu_model" and gpu is not None:  # our kernels: TensorIR compiled for the GPU
        isa = f"cuda {gpu.cuda_arch}"
    inp = manifest.inputs[0]
    shape = tuple(int(d) if isinstance(d, int) else 1 for d in inp.shape)
    return TvmRunner(module, inp.name, shape, isa)
