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

from edgeprune.contracts.manifest import CompileCheck, KernelLibrary
from edgeprune.errors import UserError
from edgeprune.export.backends.base import BuildJob, BuildOutput, max_rel_error
from edgeprune.export.backends.tvm.graph import fold_batch_norms, fold_pads, for_relax, freeze_shapes
from edgeprune.export.backends.tvm.sparse import import_onnx, replace_sparse
from edgeprune.formats.compressed import Compressed
from edgeprune.runtime.elf import elf_arch
from edgeprune.runtime.kernel_library import ABI_VERSION, session
from edgeprune.targets import Target

MODEL, DENSE = "model.so", "dense.so"


class TvmBackend:
    name = "tvm"
    tunes = True

    def __init__(self) -> None:
        self.link: list[str] = []
        self.target: Any = None
        self.lanes = 4

    def prepare(self, target: Target, stage: Callable[[str], None]) -> None:
        try:
            import tvm  # noqa: F401
        except ImportError:
            raise UserError("--backend tvm needs Apache TVM, which is not installed: "
                            "pip install 'edgeprune[tvm]'") from None
        from edgeprune.export.backends.tvm.kernels import link_options
        from edgeprune.export.backends.tvm.target import tvm_target, vector_lanes

        if target.gpu is not None:
            stage(f"{target.name}: the TVM module runs on its CPU (the CUDA path is not built yet)")
        self.target = tvm_target(target)
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
        return BuildOutput(
            files={"model": MODEL, "dense": DENSE},
            library=KernelLibrary(file=MODEL, abi=ABI_VERSION, arch=elf_arch(job.out / MODEL)) if sparse else None,
            check=self._check(job),
            batch=shape[0],
            tuning=f"{tuning}: it scheduled {tuned} functions of the sparse module and {dense_tuned} of the dense one"
            if tuning else None,
        )

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
