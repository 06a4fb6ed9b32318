"""The kernel library on this machine: where the host build lives, whether a given build can
run here (architecture, ABI, instruction set), and registering it with onnxruntime.

A library built for another CPU is refused with a clear message before it is loaded, never
left to fail with an illegal instruction: the ELF machine must match this machine, and the
library's own dispatcher must find an instruction set it was built with on this CPU.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import TYPE_CHECKING

from edgeprune.errors import UserError
from edgeprune.runtime.elf import elf_arch, host_arch

if TYPE_CHECKING:
    import onnxruntime as ort

LIBRARY_NAME = "libedgeprune_ort.so"
ABI_VERSION = 1


def host_library() -> Path:
    """The host build made by ``pip install`` (``edgeprune/_native``)."""
    path = Path(__file__).resolve().parent.parent / "_native" / LIBRARY_NAME
    if not path.is_file():
        raise UserError(f"the host kernel library is missing ({path}); reinstall edgeprune: pip install -e .")
    return path


def check_library(path: Path) -> str:
    """Refuse a library this machine cannot run; return the instruction set it will use.

    This loads the library (its constructors run): an artifact's library must come through
    :func:`edgeprune.runtime.artifact_files.checked_path` first."""
    if not path.is_file():
        raise UserError(f"kernel library not found: {path}")
    arch = elf_arch(path)
    if arch != host_arch():
        raise UserError(f"{path.name} was built for {arch}; this machine is {host_arch()}: compile for this target")
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as exc:
        raise UserError(f"{path.name} cannot be loaded: {exc}") from None
    if not hasattr(lib, "edgeprune_abi_version"):
        raise UserError(f"{path.name} is not an edgeprune kernel library (it has no edgeprune_abi_version)")
    abi = int(lib.edgeprune_abi_version())
    if abi != ABI_VERSION:
        raise UserError(f"{path.name} has kernel ABI {abi}; this edgeprune reads ABI {ABI_VERSION}: recompile")
    lib.ep_isa_name.restype = ctypes.c_char_p
    lib.ep_last_error.restype = ctypes.c_char_p
    isa = int(lib.edgeprune_isa())
    if isa < 0:
        raise UserError(f"{path.name}: {lib.ep_last_error().decode()}")
    return lib.ep_isa_name(isa).decode()


def session_options(threads: int, library: Path | None) -> ort.SessionOptions:
    import onnxruntime as ort  # here: a TVM artifact's runner reads ABI_VERSION without onnxruntime

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    # bench times the dense and the sparse session in turns in one process: idle workers of one
    # must not spin on the cores the other runs on (with 2 threads on 2 cores they did, and the
    # sparse model ran 1.9x slower than with 1 thread)
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if library is not None:
        check_library(library)
        so.register_custom_ops_library(str(library))
    return so


def session(model: Path | bytes, threads: int = 1, library: Path | None = None) -> ort.InferenceSession:
    so = session_options(threads, library)
    src = str(model) if isinstance(model, Path) else model
    import onnxruntime as ort

    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
