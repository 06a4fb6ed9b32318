"""TVM modules for a Jetson's GPU: the Relax module with every sparse layer a TensorIR kernel with
a precomputed offset table (:mod:`~edgeprune.export.backends.tvm.tir_sparse`, ``R.call_tir``), the rest
through TVM 0.27's CUDA pipeline (``relax.backend.cuda``, dlight's default GPU schedules), host
code for the board's CPU.

TVM stores a module's CUDA code as source and compiles it when the library is loaded, through a
``tvm_callback_cuda_compile`` function that a board's runtime does not have. So the source is
compiled here, for the board's architecture, with the compiler its target names (``nvcc`` for
sm_87; NVRTC 12 for sm_72 and sm_53, which nvcc 13 no longer builds), and the binary ships
beside the library; :mod:`edgeprune.runtime.tvm_module` hands it to TVM at load, after checking
that the library's source is the one it was compiled from."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from edgeprune.errors import UserError, one_line
from edgeprune.export.backends.tvm.sparse import replace_sparse
from edgeprune.export.backends.tvm.target import cpu_target
from edgeprune.export.backends.tvm.tir_sparse import describe, prim_func
from edgeprune.export.plan import PlannedLayer
from edgeprune.formats.compressed import Compressed
from edgeprune.targets import Gpu, Target

JETSON_EXTRA = "pip install 'edgeprune[jetson]'"


def cuda_target(target: Target) -> Any:
    """The board's GPU as a TVM target, with its CPU as the host."""
    import tvm

    if target.gpu is None:
        raise UserError(f"target {target.name} has no GPU")
    return tvm.target.Target({"kind": "cuda", "arch": target.gpu.cuda_arch}, host=cpu_target(target))


def replace_sparse_tir(mod: Any, layers: list[PlannedLayer], gpu: bool) -> tuple[Any, int]:
    """``mod`` with every planned sparse layer a ``call_tir`` of its own kernel (CUDA-bound when
    ``gpu``, plain loops otherwise), the input padded before it; the number of layers replaced."""
    import numpy as np
    from tvm import relax

    builder = relax.BlockBuilder(mod)  # add_func gives the kernel's GlobalVar the type call_tir checks
    count = [0]

    def kernel(layer: PlannedLayer, conv: Any, ty: Any) -> Any:
        comp = layer.weight
        assert isinstance(comp, Compressed)
        x = conv.args[0]
        shape = tuple(int(d) for d in x.ty.shape)
        top, left, bottom, right = (int(p) for p in conv.attrs.padding)
        stride = (int(conv.attrs.strides[0]), int(conv.attrs.strides[1]))
        dilation = (int(conv.attrs.dilation[0]), int(conv.attrs.dilation[1]))
        spec = describe(comp, shape, (top, left, bottom, right), stride, dilation, layer.site.act)
        gvar = builder.add_func(prim_func(spec, gpu), f"ep_sparse_conv{count[0]}")
        count[0] += 1
        if top or left or bottom or right:
            x = relax.op.nn.pad(x, [0, 0, 0, 0, top, bottom, left, right])
        consts = [relax.const(np.ascontiguousarray(a), dtype=str(a.dtype))
                  for a in (*spec.arrays(), layer.site.bias.astype(np.float32))]  # fmt: skip
        return relax.call_tir(gvar, [x, *consts], out_ty=ty)

    mod, calls = replace_sparse(mod, layers, kernel)
    out = builder.get()
    out["main"] = mod["main"]
    return out, calls


def compile_gpu(mod: Any, target: Any) -> Any:
    """``mod`` through TVM's CUDA pipeline: the executable, whose CUDA code is still source.
    ``TVM_COMPILE_FORCE_FALLBACK`` keeps it so: on a machine with an NVIDIA driver TVM would
    otherwise compile it at once, for that machine's GPU instead of the board's."""
    import tvm
    from tvm.relax.backend.cuda import pipeline as cuda

    before = os.environ.get("TVM_COMPILE_FORCE_FALLBACK")
    os.environ["TVM_COMPILE_FORCE_FALLBACK"] = "1"
    try:
        mod = tvm.relax.transform.FastMathTransform()(mod)
        with target:
            mod = cuda.get_default_pipeline(target)(mod)
        return tvm.compile(mod, target=target, relax_pipeline=None)
    except Exception as exc:  # noqa: BLE001 - TVM's passes raise its own error types
        raise UserError(f"TVM could not build the GPU module: {one_line(exc, 300)}") from None
    finally:
        if before is None:
            os.environ.pop("TVM_COMPILE_FORCE_FALLBACK", None)
        else:
            os.environ["TVM_COMPILE_FORCE_FALLBACK"] = before


def cuda_source(executable: Any) -> str:
    """The CUDA source of an executable (TVM puts all its kernels into one CUDA module)."""
    found: list[str] = []

    def walk(module: Any) -> None:
        if module.kind == "cuda":
            if any(str(module.inspect_source(kind)) for kind in ("cubin", "ptx", "fatbin")):
                raise UserError("TVM compiled the GPU module's code itself (for this machine's GPU, not the board's); "
                                "edgeprune needs it as source")  # fmt: skip
            found.append(str(module.inspect_source("cuda")))
        for imported in module.imports:
            walk(imported)

    walk(executable.mod)
    if len(found) != 1:
        raise UserError(f"the GPU module has {len(found)} CUDA code modules; edgeprune ships exactly one")
    return found[0]


def source_sha256(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


def toolchain_missing(gpu: Gpu) -> str | None:
    """Why this machine cannot compile CUDA code for ``gpu`` with the compiler its target names,
    or None when it can."""
    if gpu.device_compiler == "nvcc":
        return None if shutil.which("nvcc") else f"nvcc (the CUDA toolkit) is not on PATH, which {gpu.cuda_arch} needs"
    return _nvrtc_missing()


def _nvrtc_missing() -> str | None:
    """Why NVRTC 12 with the libcu++ headers TVM's code includes cannot be used here, or None.
    cuda-bindings also finds a CUDA 13 toolkit's NVRTC, which has no sm_53 or sm_72."""
    try:
        import nvidia.cuda_cccl  # noqa: F401
        from cuda.bindings import nvrtc

        err, major, _ = nvrtc.nvrtcVersion()
    except (ImportError, RuntimeError, OSError):
        return f"NVRTC 12 is not installed ({JETSON_EXTRA})"
    if err != nvrtc.nvrtcResult.NVRTC_SUCCESS or major != 12:
        return f"the NVRTC found is not version 12 ({JETSON_EXTRA})"
    return None


def compile_device_code(source: str, gpu: Gpu) -> tuple[bytes, str]:
    """``source`` compiled for ``gpu`` with the compiler its target names: (the binary, its
    kind: ``fatbin`` from nvcc, ``cubin`` from NVRTC)."""
    if gpu.device_compiler == "nvcc":
        return _nvcc(source, gpu.cuda_arch), "fatbin"
    return _nvrtc(source, gpu.cuda_arch), "cubin"


def _nvcc(source: str, arch: str) -> bytes:
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        raise UserError(f"nvcc not found: compiling for {arch} needs the CUDA toolkit's nvcc on PATH (or a "
                        "target with device_compiler = \"nvrtc-12\")")  # fmt: skip
    number = arch.removeprefix("sm_")
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "module.cu", Path(tmp) / "module.fatbin"
        src.write_text(source)
        try:
            done = subprocess.run([nvcc, "--fatbin", "-O3", f"-gencode=arch=compute_{number},code=sm_{number}",
                                   "-o", str(out), str(src)], capture_output=True, text=True, timeout=600)  # fmt: skip
        except subprocess.TimeoutExpired:
            raise UserError(f"nvcc did not finish compiling the GPU module for {arch} in 10 minutes") from None
        except OSError as exc:
            raise UserError(f"nvcc could not be run: {one_line(exc, 200)}") from None
        if done.returncode != 0:
            said = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
            raise UserError(f"nvcc could not compile the GPU module for {arch}: {said[:300]}")
        return out.read_bytes()


def _nvrtc(source: str, arch: str) -> bytes:
    missing = _nvrtc_missing()
    if missing:
        raise UserError(f"compiling CUDA code for {arch}: {missing}")
    import nvidia.cuda_cccl
    from cuda.bindings import nvrtc

    include = Path(next(iter(nvidia.cuda_cccl.__path__))) / "include"
    options = [f"--gpu-architecture={arch}".encode(), f"-I{include}".encode(), b"--std=c++17", b"-default-device"]
    prog = None
    try:
        err, prog = nvrtc.nvrtcCreateProgram(source.encode(), b"module.cu", 0, [], [])
        _check(err, "nvrtcCreateProgram")
        (err,) = nvrtc.nvrtcCompileProgram(prog, len(options), options)
        if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            _, size = nvrtc.nvrtcGetProgramLogSize(prog)
            log = b" " * size
            nvrtc.nvrtcGetProgramLog(prog, log)
            said = next((ln for ln in log.decode(errors="replace").splitlines() if "error" in ln), "no log")
            raise UserError(f"NVRTC could not compile the GPU module for {arch}: {said.strip()[:300]}")
        err, size = nvrtc.nvrtcGetCUBINSize(prog)
        _check(err, "nvrtcGetCUBINSize")
        cubin = b" " * size
        (err,) = nvrtc.nvrtcGetCUBIN(prog, cubin)
        _check(err, "nvrtcGetCUBIN")
    except (RuntimeError, OSError) as exc:  # the library itself missing or too old for the architecture
        raise UserError(f"NVRTC failed for {arch}: {one_line(exc, 200)} ({JETSON_EXTRA})") from None
    finally:
        if prog is not None:
            nvrtc.nvrtcDestroyProgram(prog)
    return cubin


def _check(err: Any, step: str) -> None:
    from cuda.bindings import nvrtc

    if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise RuntimeError(f"{step}: {err.name}")
