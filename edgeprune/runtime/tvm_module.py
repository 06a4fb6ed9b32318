"""Load and run a TVM module library with tvm-ffi and ``libtvm_runtime.so`` only (never TVM's
compiler). It imports nothing from edgeprune, so it also runs as a script inside an emulated
board's Python, where only numpy and tvm-ffi are installed:

    python tvm_module.py [--cuda CUDA_RUNTIME CODE SHA256] MODEL RUNTIME INPUTS OUTPUTS TASK...

runs MODEL (a path its caller checked against the artifact's manifest) on every array of the
``.npz`` INPUTS and saves the outputs as ``<sample>/<task>`` in OUTPUTS. With ``--cuda``, MODEL
is a GPU module, run on CUDA device 0 with its compiled code CODE (of the source with SHA256). A failure is one line on
stderr that says which step failed (exit code 1), not a traceback.
"""

import ctypes
import hashlib
import os
import sys
from typing import Any

import numpy as np

ALIGN = 64  # bytes: TVM's kernels assume their buffers start on this boundary
_runtime: list[Any] = []  # the loaded libtvm_runtime.so (one per process)


def load_runtime(path: str) -> None:
    """tvm-ffi with the TVM runtime (the VM, the thread pool) loaded into the process once."""
    import tvm_ffi  # noqa: F401 - loads libtvm_ffi.so, which libtvm_runtime.so needs

    if not _runtime:
        _runtime.append(ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL))


_threads: list[int] = []  # the count this process's pool was made for


def set_threads(threads: int) -> None:
    """The runtime's thread pool made for ``threads`` workers (TVM caps it at the usable cores).
    The pool is made once per process, from ``TVM_NUM_THREADS``, when it is first asked for
    (``config_threadpool`` does not resize it): a second, different count is a RuntimeError."""
    import tvm_ffi

    if _threads and _threads[0] != threads:
        raise RuntimeError(f"this process already runs TVM modules with {_threads[0]} threads (one pool per process)")
    os.environ["TVM_NUM_THREADS"] = str(threads)
    tvm_ffi.get_global_func("runtime.NumThreads")()  # makes the pool now, at that size
    _threads[:] = [threads]


_cuda: list[Any] = []  # the loaded libtvm_runtime_cuda.so
_code: dict[str, bytes] = {}  # sha256 of a module's CUDA source -> its code compiled for this GPU
_previous: list[Any] = []  # the callback ours replaced (TVM's own, in a process that also compiles)
_device_inputs: dict[tuple[Any, tuple[int, ...]], Any] = {}  # (main, shape) -> its input on the GPU
CPU, CUDA = 1, 2  # DLPack device types


def load_cuda_runtime(path: str) -> int:
    """The TVM runtime's CUDA support loaded (after :func:`load_runtime`): the number of CUDA
    devices it sees. An OSError when the library or the CUDA driver it needs is missing."""
    import tvm_ffi

    if not _cuda:
        _cuda.append(ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL))
        previous = tvm_ffi.get_global_func("tvm_callback_cuda_compile", allow_missing=True)
        if previous is not None:
            _previous.append(previous)
        tvm_ffi.register_global_func("tvm_callback_cuda_compile", _compiled_code, override=True)
    exists = tvm_ffi.get_global_func("runtime.GetDeviceAttr")
    return sum(1 for k in range(8) if int(exists(CUDA, k, 0)))


def use_cuda_code(source_sha256: str, code: bytes) -> None:
    """Give TVM ``code`` when a module whose CUDA source has this sha256 is loaded (TVM compiles a
    module's CUDA source at load; edgeprune compiled it for the board when it built the module)."""
    _code[source_sha256] = code


def _compiled_code(source: str) -> bytes:
    digest = hashlib.sha256(source.encode()).hexdigest()
    if digest not in _code and _previous:  # not an artifact's module: TVM's own compile, as before
        return bytes(_previous[0](source))
    if digest not in _code:
        raise RuntimeError(f"no compiled code for this module's CUDA source (sha256 {digest[:12]}...); "
                           "it was not built by this artifact's compile")  # fmt: skip
    return _code[digest]


def load(model: str, device: int = CPU) -> tuple[Any, Any]:
    """(the module library, its VM's ``main``) on the CPU or CUDA device 0 (after
    :func:`set_threads`; for CUDA after :func:`load_cuda_runtime` and :func:`use_cuda_code`)."""
    import tvm_ffi

    library = tvm_ffi.load_module(model)
    exe = library["vm_load_executable"]()
    # device 0 with a pooled allocator; a GPU module also needs the CPU, for its shape functions
    exe["vm_initialization"](*((CPU, 0, 2) if device == CPU else (CUDA, 0, 2, CPU, 0, 2)))
    return library, exe["main"]


def aligned(x: np.ndarray) -> np.ndarray:
    """A C-contiguous float32 copy of ``x`` whose data starts on an ``ALIGN``-byte boundary."""
    raw = np.empty(x.nbytes + ALIGN, np.uint8)
    start = -raw.ctypes.data % ALIGN
    out = raw[start : start + x.nbytes].view(np.float32).reshape(x.shape)
    out[...] = x
    return out


def run(main: Any, x: np.ndarray, device: int = CPU) -> list[np.ndarray]:
    """``main`` on one input: its outputs in order, as arrays of their own. On a GPU the input
    is copied to the device and the outputs back (the copies are part of the run)."""
    import tvm_ffi

    if device == CPU:
        out = main(tvm_ffi.from_dlpack(aligned(x)))
        outs = list(out) if isinstance(out, tvm_ffi.Array) else [out]
        return [np.array(np.from_dlpack(o), copy=True) for o in outs]
    key = (id(main), tuple(x.shape))
    if key not in _device_inputs:  # one input buffer on the GPU per module, reused: no allocation per run
        _device_inputs[key] = copied(tvm_ffi.from_dlpack(aligned(x)), device)
    else:
        tvm_ffi.get_global_func("runtime.TVMTensorCopyFromTo")(tvm_ffi.from_dlpack(aligned(x)), _device_inputs[key])
    out = main(_device_inputs[key])
    outs = list(out) if isinstance(out, tvm_ffi.Array) else [out]
    return [np.array(np.from_dlpack(copied(o, CPU)), copy=True) for o in outs]


def copied(tensor: Any, device: int) -> Any:
    """``tensor`` copied to device 0 of type ``device`` (a copy to the CPU waits for the GPU)."""
    import tvm_ffi

    get = tvm_ffi.get_global_func
    target = tvm_ffi.device("cuda" if device == CUDA else "cpu", 0)
    out = get("runtime.TVMTensorAllocWithScope")(tvm_ffi.Shape(tensor.shape), tensor.dtype, target, None)
    get("runtime.TVMTensorCopyFromTo")(tensor, out)
    return out


def main() -> int:
    argv, cuda = sys.argv[1:], None
    if argv[:1] == ["--cuda"]:
        cuda, argv = argv[1:4], argv[4:]
    model, runtime, inputs, outputs, *tasks = argv
    failed = f"{runtime}: the TVM runtime cannot be loaded"
    try:
        load_runtime(runtime)
        set_threads(1)
        device = CPU
        if cuda is not None:
            failed = f"{cuda[0]}: the TVM runtime's CUDA support cannot be loaded"
            if not load_cuda_runtime(cuda[0]):
                raise RuntimeError("no CUDA device")
            with open(cuda[1], "rb") as f:
                use_cuda_code(cuda[2], f.read())
            device = CUDA
        failed = f"{model} is not a loadable TVM module"
        _, vm_main = load(model, device)
        failed = f"{inputs} cannot be read"
        data = np.load(inputs)
        results: dict[str, Any] = {}
        for key in sorted(data.files):
            failed = f"{model} failed to run on sample {key}"
            for task, value in zip(tasks, run(vm_main, data[key], device), strict=True):
                results[f"{key}/{task}"] = value
        failed = f"{outputs} cannot be written"
        np.savez(outputs, **results)
    except Exception as exc:  # noqa: BLE001 - one line for the caller, whatever failed
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"{failed}: {first} ({type(exc).__name__})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
