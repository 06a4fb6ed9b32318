"""The TVM backend: ``model.so``, a Relax module whose sparse layers call our kernels (linked
into the library), and ``dense.so``, the dense model compiled the same way, the baseline bench
times in the same run. Both run with the TVM runtime alone
(:mod:`edgeprune.runtime.tvm_runner`). Dense convolutions get the schedule templates of
:mod:`~edgeprune.export.backends.tvm.schedule`. Checks: where the target's CPU is this one,
both modules' outputs against ONNX Runtime's dense model."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edgeprune.contracts.manifest import CompileCheck, CudaModule, GpuPath, KernelLibrary
from edgeprune.errors import UserError
from edgeprune.export.backends.base import BuildJob, BuildOutput, max_rel_error
from edgeprune.export.backends.tvm.graph import fold_batch_norms, fold_pads, for_relax, freeze_shapes
from edgeprune.export.backends.tvm.sparse import import_onnx, replace_sparse
from edgeprune.formats.compressed import Compressed
from edgeprune.runtime.elf import elf_arch
from edgeprune.runtime.kernel_library import ABI_VERSION, session
from edgeprune.targets import Gpu, Target

MODEL, DENSE = "model.so", "dense.so"
GPU_FILES = {"model": "gpu_model.so", "dense": "gpu_dense.so"}


class TvmBackend:
    name = "tvm"
    tunes = True

    def __init__(self) -> None:
        self.link: list[str] = []
        self.target: Any = None
        self.gpu_target: Any = None
        self.gpu_skipped = ""  # why a board's GPU modules are not built here
        self.lanes = 4

    def prepare(self, target: Target, stage: Callable[[str], None]) -> None:
        try:
            import tvm  # noqa: F401
        except ImportError:
            raise UserError("--backend tvm needs Apache TVM, which is not installed: "
                            "pip install 'edgeprune[tvm]'") from None
        from edgeprune.export.backends.tvm.kernels import link_options
        from edgeprune.export.backends.tvm.target import tvm_target, vector_lanes

        self.target = tvm_target(target)
        if target.gpu is not None:
            from edgeprune.export.backends.tvm.cuda import cuda_target, toolchain_missing

            self.gpu_skipped = toolchain_missing(target.gpu) or ""
            if self.gpu_skipped:  # the CPU modules are still made; compile and the manifest say why
                stage(f"{target.name}: its GPU modules are not built: {self.gpu_skipped}")
            else:
                self.gpu_target = cuda_target(target)
        self.lanes = vector_lanes(self.target)
        stage(f"building the kernels for TVM ({target.name})")
        self.link = link_options(target)

    def build(self, job: BuildJob) -> BuildOutput:
        from edgeprune.export.backends.tvm.build import compile_module, export

        if self.target is None:
            raise RuntimeError("prepare() was not called")
        shape = [int(d) for d in job.example.shape]
        dense_graph = fold_pads(fold_batch_norms(freeze_shapes(job.dense, job.example)))
        database, tuning = self._tuning(job, dense_graph, shape)
        job.stage("importing the model into Relax")
        sparse_graph = fold_pads(fold_batch_norms(freeze_shapes(for_relax(job.dense, job.layers), job.example)))
        mod, calls = replace_sparse(import_onnx(sparse_graph, shape), job.layers)
        job.stage(f"compiling the sparse module ({calls} layers on our kernels)")
        exe, tuned, _ = compile_module(mod, self.target, self.lanes, database)
        export(exe, job.target, job.out / MODEL, self.link)
        job.stage("compiling the dense module")
        dense_exe, dense_tuned, _ = compile_module(import_onnx(dense_graph, shape), self.target, self.lanes, database)
        export(dense_exe, job.target, job.out / DENSE, [])
        sparse = any(isinstance(p.weight, Compressed) for p in job.layers)
        files = {"model": MODEL, "dense": DENSE}
        gpu, check = None, self._check(job)
        if self.gpu_skipped and job.target.gpu is not None:
            gpu = _gpu_path(job.target.gpu, f"GPU modules not built: {self.gpu_skipped}")
        if self.gpu_target is not None:
            gpu = self._build_gpu(job, sparse_graph, dense_graph, shape, files)
            check = check.model_copy(update={"max_rel_error_gpu_graph": _check_gpu_graph(job, sparse_graph, shape)})
        return BuildOutput(
            files=files,
            gpu=gpu,
            library=KernelLibrary(file=MODEL, abi=ABI_VERSION, arch=elf_arch(job.out / MODEL)) if sparse else None,
            check=check,
            batch=shape[0],
            tuning=f"{tuning}: it scheduled {tuned} functions of the sparse module and {dense_tuned} of the dense one"
            if tuning else None,
        )

    def _build_gpu(self, job: BuildJob, sparse_graph: onnx.ModelProto, dense_graph: onnx.ModelProto,
                   shape: list[int], files: dict[str, str]) -> GpuPath:  # fmt: skip
        """The GPU's modules (sparse layers as CUDA kernels of their own, and the dense baseline)
        beside the CPU's, their CUDA code compiled for the board; where they are recorded."""
        from edgeprune.export.backends.tvm.build import export
        from edgeprune.export.backends.tvm.cuda import (
            compile_device_code,
            compile_gpu,
            cuda_source,
            replace_sparse_tir,
            source_sha256,
        )

        gpu = job.target.gpu
        assert gpu is not None
        modules: dict[str, CudaModule] = {}
        for role, graph in (("model", sparse_graph), ("dense", dense_graph)):
            mod, calls = replace_sparse_tir(import_onnx(graph, [*shape]), job.layers if role == "model" else [], True)
            what = f"{calls} layers on our CUDA kernels" if role == "model" else "dense"
            job.stage(f"compiling the GPU module for {gpu.cuda_arch} ({what})")
            exe = compile_gpu(mod, self.gpu_target)
            export(exe, job.target, job.out / GPU_FILES[role], [])
            source = cuda_source(exe)
            job.stage(f"compiling its CUDA code for {gpu.cuda_arch} with {gpu.device_compiler}")
            binary, kind = compile_device_code(source, gpu)
            code = GPU_FILES[role].replace(".so", f".{kind}")
            (job.out / code).write_bytes(binary)
            files[f"gpu_{role}"], files[f"gpu_{role}_code"] = GPU_FILES[role], code
            modules[role] = CudaModule(library=f"gpu_{role}", code=f"gpu_{role}_code", kind=kind,  # type: ignore[arg-type]
                                       source_sha256=source_sha256(source))  # fmt: skip
        return _gpu_path(gpu, f"TVM modules for the GPU ({GPU_FILES['model']}: the sparse layers as CUDA kernels "
                              f"with precomputed offset tables; {GPU_FILES['dense']}: the dense baseline), their code "
                              f"compiled for {gpu.cuda_arch} with {gpu.device_compiler}", modules)  # fmt: skip

    def _tuning(self, job: BuildJob, dense_graph: onnx.ModelProto, shape: list[int]) -> tuple[Path | None, str]:
        """The tuning database to apply (tuned first when --tune-trials asks), and its description."""
        from edgeprune.export.backends.tvm.build import legalize
        from edgeprune.export.backends.tvm.tuning import check_database, database_dir, tune
        from edgeprune.runtime.elf import host_arch

        path = database_dir(self.target, job.target.name, job.tuning.database)
        ready = check_database(path, self.target)
        if job.tuning.trials:
            if job.target.arch not in ("native", host_arch()):
                raise UserError(f"--tune-trials measures on the machine that compiles; {job.target.name} is another "
                                f"CPU: compile with --tune-trials on the board (--target {job.target.name}) and pass "
                                "its database here with --tuning-db")  # fmt: skip
            mod = legalize(import_onnx(dense_graph, shape), self.target, self.lanes)
            tune(mod, self.target, path, job.tuning.trials, job.stage)
            ready = True
        elif job.tuning.database is not None and not ready:
            raise UserError(f"tuning database {path} holds no records; make it with --tune-trials N")
        return (path, f"MetaSchedule database {path}") if ready else (None, "")

    def _check(self, job: BuildJob) -> CompileCheck:
        input_text = "the workload's first calibration example, resized to the input shape"
        if job.target.library != "host":  # a board's module is checked on the board (or under qemu)
            return CompileCheck(input=input_text, max_rel_error_with_library=None, max_rel_error_fallback=None,
                                with_library=f"not run here (a module for {job.target.cpu.arch}): run edgeprune verify")
        job.stage("checking outputs")
        want = session(job.dense.SerializeToString()).run(None, {job.dense.graph.input[0].name: job.example})
        got = {f: _run_apart(job.out / f, job.example, len(want)) for f in (MODEL, DENSE)}
        return CompileCheck(input=input_text, max_rel_error_with_library=max_rel_error(got[MODEL], want),
                            max_rel_error_fallback=None, max_rel_error_dense_module=max_rel_error(got[DENSE], want))


def _gpu_path(gpu: Gpu, cuda_code: str, modules: dict[str, CudaModule] | None = None) -> GpuPath:
    """The manifest's record of the board's GPU for a TVM artifact (TensorRT takes the ONNX one's)."""
    return GpuPath(name=gpu.name, cuda_arch=gpu.cuda_arch, jetpack=gpu.jetpack, cuda=gpu.cuda,
                   device_compiler=gpu.device_compiler, cuda_code=cuda_code,
                   tensorrt={"skipped": "a TVM artifact: its GPU modules run with the TVM runtime "
                                        "(compile with --backend onnxruntime for TensorRT)"},
                   modules=modules or {})  # fmt: skip


def _check_gpu_graph(job: BuildJob, sparse_graph: onnx.ModelProto, shape: list[int]) -> float:
    """The GPU module's graph, with its sparse kernels built as plain loops for this machine's
    CPU, against ONNX Runtime's dense model: the check of the rewrite and of the kernels'
    arithmetic that a machine without the board's GPU can make."""
    import tvm
    from tvm.target import codegen

    from edgeprune.export.backends.tvm.build import compile_module
    from edgeprune.export.backends.tvm.cuda import replace_sparse_tir
    from edgeprune.export.backends.tvm.target import vector_lanes

    job.stage("checking the GPU module's graph, its kernels run on this CPU")
    here = tvm.target.Target({"kind": "llvm", "mcpu": codegen.llvm_get_system_cpu()})
    mod, _ = replace_sparse_tir(import_onnx(sparse_graph, [*shape]), job.layers, False)
    exe, _, _ = compile_module(mod, here, vector_lanes(here))
    want = session(job.dense.SerializeToString()).run(None, {job.dense.graph.input[0].name: job.example})
    with tempfile.TemporaryDirectory() as tmp:
        exe.export_library(str(Path(tmp) / "check.so"))
        return max_rel_error(_run_apart(Path(tmp) / "check.so", job.example, len(want)), want)


def _run_apart(module: Path, x: np.ndarray, outputs: int) -> list[np.ndarray]:
    """``module``'s outputs on ``x``, run in a process of its own: the TVM runtime's thread pool
    is made once per process, and this one (a sweep's) may bench modules later with other
    ``--threads``."""
    from edgeprune.runtime import tvm_module
    from edgeprune.runtime.tvm_runner import runtime_library

    names = [f"o{k}" for k in range(outputs)]
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "in.npz", x=x)
        try:
            done = subprocess.run([sys.executable, tvm_module.__file__, str(module), str(runtime_library()),
                                   str(Path(tmp) / "in.npz"), str(Path(tmp) / "out.npz"), *names],
                                  capture_output=True, text=True, timeout=600)  # fmt: skip
        except subprocess.TimeoutExpired:
            raise UserError(f"the compiled {module.name} did not finish one run in 10 minutes") from None
        if done.returncode != 0:
            said = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
            raise UserError(f"the compiled {module.name} failed to run here: {said}")
        out = np.load(Path(tmp) / "out.npz")
        return [out[f"x/{n}"] for n in names]
