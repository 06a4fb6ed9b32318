"""``edgeprune compile``: a pruned checkpoint to an artifact directory for one target.

The orchestrator: checkpoint -> the dense ONNX graph it carries, at the deploy resolution ->
per-layer format choice (the target's calibrated cost model) -> backend
(:mod:`edgeprune.export.backends`) -> checks -> staged artifact with its manifest. Only the
backend knows the output format. No workload code is needed or imported: the graph and the
example inputs come from the checkpoint.

Usage::

    manifest = compile_artifact(CompileRequest(Path("p.ept"), "host", Path("out/")))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from edgeprune import __version__
from edgeprune.checkpoint import load_checkpoint
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
from edgeprune.export.backends.base import BuildJob, BuildOutput, Tuning
from edgeprune.export.choose import DEFAULT_BLOCKS, DEFAULT_NM
from edgeprune.export.input_size import check_input_size
from edgeprune.export.plan import PlannedLayer, Shapes, plan_layers
from edgeprune.fsio import check_output, sha256_file, staged_dir
from edgeprune.graph.carried import at_size
from edgeprune.graph.inputs import resized
from edgeprune.masks import MaskSet
from edgeprune.targets import Target, load_target


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
    tuning: Tuning = dataclasses.field(default_factory=Tuning)


def _pruning_shapes(masks: MaskSet) -> tuple[Shapes, Shapes]:
    """Block and N:M shapes the pruning used, tried before the defaults."""
    blocks = {(g.a, g.b) for g in masks.granularity.values() if g.kind == "block"}
    nms = {(g.a, g.b) for g in masks.granularity.values() if g.kind == "nm"}
    return tuple(sorted(blocks)) + DEFAULT_BLOCKS, tuple(sorted(nms)) + DEFAULT_NM


def compile_artifact(req: CompileRequest, on_stage: Callable[[str], None] | None = None) -> Manifest:
    stage = on_stage or (lambda _s: None)
    check_output(req.out, req.force, directory=True)
    if req.out.is_dir() and not (req.out / MANIFEST).is_file() and any(req.out.iterdir()):
        raise UserError(f"output {req.out} is a directory that is not an edgeprune artifact (no {MANIFEST}); "
                        "--force replaces only an artifact")  # fmt: skip
    target = load_target(req.target, req.targets_dir)
    table = CostTable.load(target.calibration_path)
    backend = get_backend(req.backend)
    if (req.tuning.trials or req.tuning.database) and not backend.tunes:
        raise UserError(f"--tune-trials and --tuning-db apply to --backend tvm, not {req.backend}")
    backend.prepare(target, stage)
    stage("loading checkpoint")
    ckpt = load_checkpoint(req.checkpoint)
    # load_checkpoint has refused non-finite weights, naming the weight, and a graph whose sha256 differs
    meta = ckpt.meta
    graph, info = ckpt.carried_graph()
    stage("checking the input size")
    check_input_size(graph, info, meta.model, ckpt.inputs[:1].numpy(), req.input_size)
    dense = at_size(graph, info, req.input_size, meta.model)
    x = resized(ckpt.inputs[:1], req.input_size).numpy()
    stage("choosing formats")
    layers = plan_layers(dense, x, table, req.policy, *_pruning_shapes(ckpt.masks))
    with staged_dir(req.out, req.force) as tmp:
        built = backend.build(BuildJob(target, dense, layers, x, tmp, stage, req.tuning))
        batch: str | int = "batch" if built.batch is None else built.batch
        inp = TensorSpec(name=dense.graph.input[0].name, shape=[batch, *x.shape[1:]], dtype="float32")
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
        tuning=built.tuning,
    )
