"""``edgeprune compile``: a pruned checkpoint to an artifact directory for one target.

The orchestrator: checkpoint -> masked model -> dense ONNX graph -> per-layer format choice
(the target's calibrated cost model) -> backend (:mod:`edgeprune.export.backends`) -> checks ->
staged artifact with its manifest. Only the backend knows the output format.

Usage::

    manifest = compile_artifact(CompileRequest(Path("p.ept"), "host", Path("out/")))
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from edgeprune import __version__
from edgeprune.checkpoint import load_checkpoint, masked_model
from edgeprune.contracts.checkpoint import CheckpointMeta
from edgeprune.contracts.manifest import (
    MANIFEST,
    ArtifactFile,
    Calibration,
    CheckpointRef,
    Manifest,
    OutputSpec,
    PowerSensors,
    Summary,
    TargetInfo,
    TensorSpec,
)
from edgeprune.costmodel.table import CostTable
from edgeprune.errors import UserError
from edgeprune.export.backends import DEFAULT_BACKEND, get_backend
from edgeprune.export.backends.base import BuildJob, BuildOutput
from edgeprune.export.choose import DEFAULT_BLOCKS, DEFAULT_NM
from edgeprune.export.dense_graph import dense_onnx
from edgeprune.export.plan import PlannedLayer, Shapes, plan_layers
from edgeprune.fsio import check_output, sha256_file, staged_dir
from edgeprune.masks import MaskSet
from edgeprune.targets import Target, load_target
from edgeprune.workload.registry import checkpoint_workload


@dataclasses.dataclass
class CompileRequest:
    checkpoint: Path
    target: str
    out: Path
    policy: str = "auto"
    force: bool = False
    input_size: tuple[int, int] | None = None  # deploy resolution (H, W); default: the workload's
    targets_dir: Path | None = None  # user target files, searched first
    backend: str = DEFAULT_BACKEND
    workload: str | None = None  # overrides the workload the checkpoint records


def _pruning_shapes(masks: MaskSet) -> tuple[Shapes, Shapes]:
    """Block and N:M shapes the pruning used, tried before the defaults."""
    blocks = {(g.a, g.b) for g in masks.granularity.values() if g.kind == "block"}
    nms = {(g.a, g.b) for g in masks.granularity.values() if g.kind == "nm"}
    return tuple(sorted(blocks)) + DEFAULT_BLOCKS, tuple(sorted(nms)) + DEFAULT_NM


# Where the memory estimate of an input size comes from: the bytes of every layer's output at the
# workload's own size, scaled by area, times this factor (the exported graph, two ONNX Runtime
# sessions and the per-layer measurements each hold activations of their own; measured on
# mtl-resnet at 1024x1024, compile peaked at about 0.7x the sum, so 2x leaves a margin).
MEMORY_FACTOR = 2


def _available_memory() -> int | None:
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


def _activation_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes of the input and of every leaf module's outputs in one forward pass."""
    total = x.numel() * x.element_size()

    def count(_m: nn.Module, _i: object, out: object) -> None:
        nonlocal total
        stack = [out]
        while stack:
            item = stack.pop()
            if isinstance(item, torch.Tensor):
                total += item.numel() * item.element_size()
            elif isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, list | tuple):
                stack.extend(item)

    handles = [m.register_forward_hook(count) for m in model.modules() if next(m.children(), None) is None]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return total


def _runs(model: nn.Module, shape: tuple[int, ...]) -> str | None:
    """None if ``model`` runs on zeros of ``shape``, else the first line of its error."""
    try:
        with torch.no_grad():
            model(torch.zeros(shape))
    except Exception as exc:  # noqa: BLE001 - any failure of the user's model means "does not run here"
        return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return None


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def check_input_size(model: nn.Module, name: str, native: torch.Tensor, size: tuple[int, int] | None) -> None:
    """Refuse a deploy resolution ``size`` (H, W) that model ``name`` cannot run at (smaller than
    the smallest it runs at, or a size its layers do not accept) or whose activations would not fit
    in this machine's memory. ``native`` is one input at the workload's own size. The model is run
    at the workload's size (for the memory estimate) and at ``size`` only when that fits."""
    if size is None:
        return
    h, w = size
    if native.dim() != 4:
        raise UserError(f"--input-size applies to image models; model {name} takes inputs of shape "
                        f"{'x'.join(map(str, native.shape[1:]))}, not channels x height x width")  # fmt: skip
    _, c, h0, w0 = native.shape
    per_pixel = _activation_bytes(model, native[:1]) / (h0 * w0)
    need = per_pixel * h * w * MEMORY_FACTOR
    have = _available_memory()
    if have is not None and need > have:
        raise UserError(f"input size {h}x{w} is too large for model {name}: it needs about {_human_bytes(need)} of "
                        f"memory (estimated from its activations at {h0}x{w0}) and this machine has "
                        f"{_human_bytes(have)} available")  # fmt: skip
    problem = _runs(model, (1, c, h, w))
    if problem is None:
        return
    lo, hi = 1, min(h0, w0)  # the smallest square that runs, by bisection (the workload's size runs)
    if _runs(model, (1, c, hi, hi)) is None:
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if _runs(model, (1, c, mid, mid)) is None else (mid + 1, hi)
        if h < hi or w < hi:
            raise UserError(f"input size {h}x{w} is too small for model {name} (the smallest that runs is {hi}x{hi})")
    raise UserError(f"model {name} does not run at input size {h}x{w} ({problem}); it runs at {h0}x{w0}, the "
                    "workload's size")  # fmt: skip


def compile_artifact(req: CompileRequest, on_stage: Callable[[str], None] | None = None) -> Manifest:
    stage = on_stage or (lambda _s: None)
    check_output(req.out, req.force, directory=True)
    if req.out.is_dir() and not (req.out / MANIFEST).is_file() and any(req.out.iterdir()):
        raise UserError(f"output {req.out} is a directory that is not an edgeprune artifact (no {MANIFEST}); "
                        "--force replaces only an artifact")  # fmt: skip
    target = load_target(req.target, req.targets_dir)
    table = CostTable.load(target.calibration_path)
    backend = get_backend(req.backend)
    backend.prepare(target, stage)
    stage("loading checkpoint")
    ckpt = load_checkpoint(req.checkpoint)
    # load_checkpoint has refused non-finite weights, naming the weight
    workload = checkpoint_workload(ckpt.meta.workload, req.workload)
    model = masked_model(ckpt, workload)
    check_input_size(model, ckpt.meta.model, workload.inputs_at(1), req.input_size)
    example = workload.inputs_at(1, req.input_size)
    stage("exporting dense ONNX")
    dense = dense_onnx(model, example, ckpt.meta.tasks)
    x = example.numpy()
    stage("choosing formats")
    layers = plan_layers(dense, x, table, req.policy, *_pruning_shapes(ckpt.masks))
    with staged_dir(req.out, req.force) as tmp:
        built = backend.build(BuildJob(target, dense, layers, x, tmp, stage))
        inp = TensorSpec(name=dense.graph.input[0].name, shape=["batch", *x.shape[1:]], dtype="float32")
        manifest = _manifest(req, backend.name, target, ckpt.meta, layers, built, tmp, inp, table.measured)
        (tmp / MANIFEST).write_text(manifest.to_json())
    return manifest


def _manifest(
    req: CompileRequest, backend: str, target: Target, meta: CheckpointMeta, layers: list[PlannedLayer],
    built: BuildOutput, tmp: Path, inp: TensorSpec, table_measured: bool,
) -> Manifest:  # fmt: skip
    records = [p.record for p in layers]
    counts: dict[str, int] = {}
    for r in records:
        counts[r.format] = counts.get(r.format, 0) + 1
    files = {role: ArtifactFile(path=name, sha256=sha256_file(tmp / name), bytes=(tmp / name).stat().st_size)
             for role, name in built.files.items()}  # fmt: skip
    model_bytes, dense_bytes = files["model"].bytes, files["dense"].bytes
    arch = built.library.arch if built.library else target.arch
    p = target.power
    return Manifest(
        edgeprune_version=__version__,
        backend=backend,
        target=TargetInfo(name=target.name, description=target.description, arch=arch, cpu_flags=target.cpu.flags,
                          qemu_cpu=target.cpu.qemu_cpu, threads=target.threads,
                          calibration=Calibration(file=target.calibration_path.name, measured=table_measured),
                          power=PowerSensors(sensor=p.sensor, interface=p.interface, total_rail=p.total_rail,
                                             rails=list(p.rails))),  # fmt: skip
        checkpoint=CheckpointRef(file=req.checkpoint.name, path=str(req.checkpoint.resolve()),
                                 sha256=sha256_file(req.checkpoint), workload=meta.workload, model=meta.model,
                                 method=meta.method),  # fmt: skip
        tasks=meta.tasks,
        inputs=[inp],
        outputs=[OutputSpec(name=t, task=t) for t in meta.tasks],
        files=files,
        library=built.library,
        format_policy=req.policy,
        layers=records,
        summary=Summary(layers=len(records), formats=counts, model_bytes=model_bytes, dense_bytes=dense_bytes,
                        size_ratio=model_bytes / dense_bytes),  # fmt: skip
        check=built.check,
        gpu=built.gpu,
    )
