"""``edgeprune compile``: a pruned checkpoint to an artifact directory for one target.

The orchestrator: checkpoint -> masked model -> dense ONNX graph -> per-layer format choice
(the target's calibrated cost model) -> backend (:mod:`edgeprune.export.backends`) -> checks ->
staged artifact with its manifest. Only the backend knows the output format.

Usage::

    manifest = compile_artifact(CompileRequest(Path("p.ept"), "host", Path("out/")))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

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
from edgeprune.fsio import sha256_file, staged_dir
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


def compile_artifact(req: CompileRequest, on_stage: Callable[[str], None] | None = None) -> Manifest:
    stage = on_stage or (lambda _s: None)
    target = load_target(req.target, req.targets_dir)
    table = CostTable.load(target.calibration_path)
    backend = get_backend(req.backend)
    if req.out.exists() and not req.force:
        raise UserError(f"output directory {req.out} exists; use --force to replace it")
    if req.input_size is not None and min(req.input_size) < 8:
        raise UserError(f"--input-size {req.input_size[0]}x{req.input_size[1]} is too small (8x8 at least)")
    backend.prepare(target, stage)
    stage("loading checkpoint")
    ckpt = load_checkpoint(req.checkpoint)
    workload = checkpoint_workload(ckpt.meta.workload, req.workload)
    model = masked_model(ckpt, workload)
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
