"""The ONNX Runtime backend: ``model.onnx`` (sparse: ``edgeprune`` ops with standard fallback
functions, so stock onnxruntime runs it and runs our kernels when the library is registered),
``dense.onnx`` (the baseline bench times in the same run) and the kernel library built for the
target. Checks: ``onnx.checker`` full check, and the outputs against the dense model, with the
library (when it runs here) and with the fallback."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import onnx

from edgeprune.contracts.manifest import CompileCheck, KernelLibrary
from edgeprune.errors import UserError
from edgeprune.export.backends.base import BuildJob, BuildOutput, max_rel_error
from edgeprune.export.backends.onnxruntime.rewrite import rewrite
from edgeprune.export.gpu import tensorrt_path
from edgeprune.export.kernel_build import cross_library
from edgeprune.runtime.elf import elf_arch
from edgeprune.runtime.kernel_library import ABI_VERSION, check_library, host_library, session
from edgeprune.targets import Target


class OrtBackend:
    name = "onnxruntime"
    tunes = False

    def __init__(self) -> None:
        self.library: Path | None = None

    def prepare(self, target: Target, stage: Callable[[str], None]) -> None:
        if target.library == "host":
            self.library = host_library()
            check_library(self.library)
        else:
            stage(f"building the kernel library for {target.name}")
            self.library = cross_library(target)

    def build(self, job: BuildJob) -> BuildOutput:
        if self.library is None:
            raise RuntimeError("prepare() was not called")
        sparse = rewrite(job.dense, [(p.site, p.weight) for p in job.layers if p.weight is not None])
        try:
            onnx.checker.check_model(sparse, full_check=True)
        except onnx.checker.ValidationError as exc:
            raise UserError(f"the sparse ONNX failed onnx.checker: {str(exc).splitlines()[0]}") from None
        job.stage("checking outputs")
        feed = {job.dense.graph.input[0].name: job.example}
        want = session(job.dense.SerializeToString()).run(None, feed)
        sparse_bytes = sparse.SerializeToString()
        native = job.target.library == "host"
        # A library built for another CPU cannot run here: edgeprune verify runs it under emulation.
        with_lib = max_rel_error(session(sparse_bytes, library=self.library).run(None, feed), want) if native else None
        check = CompileCheck(
            input="the workload's first calibration example, resized to the input shape",
            max_rel_error_with_library=with_lib,
            max_rel_error_fallback=max_rel_error(session(sparse_bytes).run(None, feed), want),
            with_library=None if native else f"not run here (library for {job.target.cpu.arch}): run edgeprune verify",
        )  # fmt: skip
        job.stage("writing artifact")
        onnx.save(sparse, job.out / "model.onnx")
        onnx.save(job.dense, job.out / "dense.onnx")
        shutil.copy2(self.library, job.out / self.library.name)
        arch = elf_arch(job.out / self.library.name)
        return BuildOutput(
            files={"model": "model.onnx", "dense": "dense.onnx", "library": self.library.name},
            library=KernelLibrary(file=self.library.name, abi=ABI_VERSION, arch=arch),
            check=check,
            gpu=tensorrt_path(job.target, [p.site for p in job.layers], "dense.onnx"),
        )
