"""Whether a deploy resolution (``--input-size``) suits a checkpoint's model: checked on the
graph the checkpoint carries, with ONNX Runtime, before any compile work. A size the graph
cannot run at is refused with the smallest that runs (found by bisection) or the reason; a size
whose activations would not fit in this machine's memory is refused with the estimate."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import onnx

from edgeprune.contracts.checkpoint import GraphInfo
from edgeprune.errors import UserError, one_line
from edgeprune.export.plan import intermediates
from edgeprune.graph.carried import at_size
from edgeprune.runtime.kernel_library import session

# Where the memory estimate of an input size comes from: the bytes of every node's output at the
# workload's own size, scaled by area, times this factor (the graph, two ONNX Runtime sessions
# and the per-layer measurements each hold activations of their own; measured on mtl-resnet at
# 1024x1024, compile peaked at about 0.7x the sum, so 2x leaves a margin).
MEMORY_FACTOR = 2


def available_memory() -> int | None:
    """Bytes this process can still allocate: MemAvailable (else the free physical memory), capped
    by a cgroup limit; None where none can be read."""
    found: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    if not found:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            found.append(int(limit))
    except OSError:
        pass
    return min(found) if found else None


def activation_bytes(graph: onnx.ModelProto, x: np.ndarray) -> int:
    """Bytes of the input and of every node's outputs (whose type shape inference finds) in one
    run on ``x``."""
    inferred = onnx.shape_inference.infer_shapes(graph).graph.value_info
    types = {v.name: v.type.tensor_type.elem_type for v in inferred if v.type.tensor_type.elem_type}
    outputs = [o.name for o in graph.graph.output]
    names = [o for n in graph.graph.node for o in n.output if o in types] + outputs
    return int(x.nbytes + sum(v.nbytes for v in intermediates(graph, names, x, types).values()))


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def check_input_size(graph: onnx.ModelProto, info: GraphInfo, name: str, native: np.ndarray,
                     size: tuple[int, int] | None) -> None:  # fmt: skip
    """Refuse a deploy resolution ``size`` (H, W) that model ``name`` (its carried ``graph``)
    cannot run at or whose activations would not fit in this machine's memory. ``native`` is
    one input at the workload's own size. The graph runs at the workload's size (for the memory
    estimate) and at ``size`` only when that fits."""
    if size is None:
        return
    at_size(graph, info, size, name)  # a non-image model, or a fixed graph at another size
    h, w = size
    _, c, h0, w0 = native.shape
    per_pixel = activation_bytes(graph, native[:1]) / (h0 * w0)
    need = per_pixel * h * w * MEMORY_FACTOR
    have = available_memory()
    if have is not None and need > have:
        raise UserError(f"input size {h}x{w} is too large for model {name}: it needs about {human_bytes(need)} of "
                        f"memory (estimated from its activations at {h0}x{w0}) and this machine has "
                        f"{human_bytes(have)} available")  # fmt: skip
    sess = session(graph.SerializeToString())
    feed = graph.graph.input[0].name

    def runs(shape: tuple[int, ...]) -> str | None:
        try:
            sess.run(None, {feed: np.zeros(shape, np.float32)})
        except Exception as exc:  # noqa: BLE001 - any failure of the model means "does not run here"
            return one_line(exc)
        return None

    problem = runs((1, c, h, w))
    if problem is None:
        return
    lo, hi = 1, min(h0, w0)  # the smallest square that runs, by bisection (the workload's size runs)
    if runs((1, c, hi, hi)) is None:
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if runs((1, c, mid, mid)) is None else (mid + 1, hi)
        if h < hi or w < hi:
            raise UserError(f"input size {h}x{w} is too small for model {name} (the smallest that runs is {hi}x{hi})")
    raise UserError(f"model {name} does not run at input size {h}x{w} ({problem}); it runs at {h0}x{w0}, the "
                    "workload's size")  # fmt: skip
