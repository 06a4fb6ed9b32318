"""A Relax module to a module library: TVM 0.27's CPU pipeline (``relax.backend.cpu_generic``)
with bilinear resizes made separable before it and our schedule templates applied between
legalisation and lowering, compiled by LLVM for the
target and linked (``export_library``, cross-compiled for a board) with the options that put our
kernels into it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from edgeprune.errors import UserError, one_line
from edgeprune.export.backends.tvm.resize import replace_resizes
from edgeprune.export.backends.tvm.schedule import schedule_module
from edgeprune.export.backends.tvm.tuning import apply
from edgeprune.targets import Target


def legalize(mod: Any, target: Any, lanes: int) -> Any:
    """``mod`` with separable resizes and fast exp, legalised and fused into PrimFuncs, none
    scheduled yet."""
    import tvm
    from tvm.relax.backend.cpu_generic import pipeline as cpu

    mod, _ = replace_resizes(mod, lanes)
    # exp as TVM's vectorisable polynomial instead of a libm call per element (Softplus heads:
    # 0.20 -> 0.13 ms on mtl-resnet's depth head; the outputs still match ONNX Runtime's to 1e-6)
    mod = tvm.relax.transform.FastMathTransform()(mod)
    with target:
        return tvm.transform.Sequential([*cpu.library_dispatch_passes(target), *cpu.legalize_passes(target)])(mod)


def compile_module(mod: Any, target: Any, lanes: int, database: Path | None = None) -> tuple[Any, int, int]:
    """``mod`` compiled for ``target``: the executable, how many functions the tuning
    ``database`` scheduled and how many convolutions the templates did (the rest run TVM's
    default schedule)."""
    import tvm
    from tvm.relax.backend.cpu_generic import pipeline as cpu

    mod = legalize(mod, target, lanes)
    tuned = 0
    if database is not None:
        mod = apply(mod, target, database)
        tuned = sum(1 for f in mod.functions.values() if _is_scheduled(f))
    mod, scheduled = schedule_module(mod, lanes)
    with target:
        mod = tvm.transform.Sequential([*cpu.dataflow_lower_passes(target), *cpu.finalize_passes(target)])(mod)
    return tvm.compile(mod, target=target, relax_pipeline=None), tuned, scheduled


def _is_scheduled(func: Any) -> bool:
    attrs = getattr(func, "attrs", None)
    return attrs is not None and "tirx.is_scheduled" in attrs and bool(attrs["tirx.is_scheduled"])


def export(executable: Any, board: Target, out: Path, link: list[str]) -> None:
    """Write the module library to ``out``, linked for ``board`` with the options ``link``."""
    from tvm.support import cc

    if board.library == "host":
        compiler = None
    elif shutil.which(board.cpu.cross_compiler) is None:
        raise UserError(f"cross compiler {board.cpu.cross_compiler} not found; install it: "
                        f"apt-get install {board.cpu.cross_package}")  # fmt: skip
    else:
        compiler = cc.cross_compiler(board.cpu.cross_compiler)
    try:
        # -s: without the symbol tables and debug information the library is about half the size
        executable.export_library(str(out), fcompile=compiler, options=[*link, "-s"])
    except Exception as exc:  # noqa: BLE001 - the linker's failure comes as a RuntimeError with its output
        raise UserError(f"linking the TVM module for {board.name} failed: {one_line(exc, 300)}") from None
