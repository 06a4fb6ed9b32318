"""Load and run a TVM module library with tvm-ffi and ``libtvm_runtime.so`` only (never TVM's
compiler). It imports nothing from edgeprune, so it also runs as a script inside an emulated
board's Python, where only numpy and tvm-ffi are installed:

    python tvm_module.py MODEL RUNTIME INPUTS OUTPUTS TASK...

runs MODEL (a path its caller checked against the artifact's manifest) on every array of the
``.npz`` INPUTS and saves the outputs as ``<sample>/<task>`` in OUTPUTS. A failure is one line on
stderr that says which step failed (exit code 1), not a traceback.
"""

import ctypes
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


def load(model: str) -> tuple[Any, Any]:
    """(the module library, its VM's ``main``) on the CPU (after :func:`set_threads`)."""
    import tvm_ffi

    library = tvm_ffi.load_module(model)
    exe = library["vm_load_executable"]()
    exe["vm_initialization"](1, 0, 2)  # CPU device 0, pooled allocator
    return library, exe["main"]


def aligned(x: np.ndarray) -> np.ndarray:
    """A C-contiguous float32 copy of ``x`` whose data starts on an ``ALIGN``-byte boundary."""
    raw = np.empty(x.nbytes + ALIGN, np.uint8)
    start = -raw.ctypes.data % ALIGN
    out = raw[start : start + x.nbytes].view(np.float32).reshape(x.shape)
    out[...] = x
    return out


def run(main: Any, x: np.ndarray) -> list[np.ndarray]:
    """``main`` on one input: its outputs in order, as arrays of their own."""
    import tvm_ffi

    out = main(tvm_ffi.from_dlpack(aligned(x)))
    outs = list(out) if isinstance(out, tvm_ffi.Array) else [out]
    return [np.array(np.from_dlpack(o), copy=True) for o in outs]


def main() -> int:
    model, runtime, inputs, outputs, *tasks = sys.argv[1:]
    failed = f"{runtime}: the TVM runtime cannot be loaded"
    try:
        load_runtime(runtime)
        set_threads(1)
        failed = f"{model} is not a loadable TVM module"
        _, vm_main = load(model)
        failed = f"{inputs} cannot be read"
        data = np.load(inputs)
        results: dict[str, Any] = {}
        for key in sorted(data.files):
            failed = f"{model} failed to run on sample {key}"
            for task, value in zip(tasks, run(vm_main, data[key]), strict=True):
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
