"""The prune stage end to end: load, extract tasks, score and mask, fine-tune, evaluate, and
export the pruned model's graph for the checkpoint to carry.

The CLI, the demo and the benchmarks all call :func:`prune` so they do the same thing. Its
steps (:func:`~edgeprune.prune.source.load_and_extract`, :func:`prune_context`, the method,
:func:`finetune`, :func:`~edgeprune.evaluate.evaluate`) are the ones the SMSP mask library builds
its entries with.

Usage::

    result = prune(PruneRequest(workload="scenes", tasks=["seg", "depth"], method="magnitude",
                                sparsity=0.9, finetune=FinetuneConfig(steps=100)))
    result.report.overall.sparsity, result.after["seg"]["miou"]
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgeprune import __version__
from edgeprune.checkpoint import save_checkpoint
from edgeprune.contracts.checkpoint import CheckpointMeta, PruneMetrics
from edgeprune.errors import UserError
from edgeprune.evaluate import evaluate, flatten
from edgeprune.graph.carried import CARRIED_INPUTS, Carried, carry_graph
from edgeprune.masks import MaskSet, SparsityReport, prunable_parameters, sparsity_report
from edgeprune.metrics import delta_t
from edgeprune.prune.base import make_pruner
from edgeprune.prune.context import PruneContext
from edgeprune.prune.registry import method_spec, resolve_options
from edgeprune.prune.source import Loaded, load_and_extract
from edgeprune.taskgraph.extract import output_layers
from edgeprune.taskgraph.graph import TaskGraph
from edgeprune.train.finetune import FinetuneConfig, masked_finetune
from edgeprune.workload.base import Workload
from edgeprune.workload.registry import resolve_workload, workload_reference
from edgeprune.workload.weights import state_hash

SPARSITY_TOLERANCE = 0.005


@dataclasses.dataclass
class PruneRequest:
    """What to prune and how. ``tasks=None`` keeps every task; ``sparsity=None`` is allowed only
    for methods that fix it (N:M)."""

    workload: str
    method: str
    sparsity: float | None
    tasks: list[str] | None = None
    model: str | None = None
    weights: str | None = None
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    finetune: FinetuneConfig = dataclasses.field(default_factory=lambda: FinetuneConfig(steps=0))
    exclude: tuple[str, ...] = ()
    evaluate_before: bool = True


@dataclasses.dataclass
class PruneResult:
    model: nn.Module
    masks: MaskSet
    graph: TaskGraph
    report: SparsityReport
    tasks: list[str]
    before: dict[str, dict[str, float]] | None
    after: dict[str, dict[str, float]]
    delta_t: float | None
    meta: CheckpointMeta
    timings: dict[str, float]
    carried: Carried  # the graph and inputs the checkpoint carries
    delta_t_reason: str | None = None  # why delta_t is None


@dataclasses.dataclass
class Hooks:
    """Progress callbacks for a front end: a stage started, fine-tuning advanced."""

    stage: Callable[[str], None] = lambda _name: None
    finetune_step: Callable[[int, float], None] | None = None


def finetune_config(method: str, *, steps: int | None = None, lr: float | None = None, batch_size: int = 16,
                    optimizer: str = "adam") -> FinetuneConfig:  # fmt: skip
    """Fine-tuning settings: what the user gave, else what the method recommends (CUT: lr 1e-5,
    1,000 steps), else no fine-tuning at lr 1e-4."""
    rec = method_spec(method).finetune_defaults
    cfg = FinetuneConfig(
        steps=steps if steps is not None else rec.get("steps", 0),
        lr=lr if lr is not None else rec.get("lr", 1e-4),
        batch_size=batch_size, optimizer=optimizer,
    )  # fmt: skip
    if cfg.steps < 0 or cfg.batch_size < 1 or not (math.isfinite(cfg.lr) and cfg.lr > 0):
        raise UserError("--finetune-steps must be >= 0, --batch-size >= 1 and --lr a finite number > 0")
    if cfg.optimizer not in ("adam", "sgd"):
        raise UserError(f"unknown optimiser '{cfg.optimizer}'; use adam or sgd")
    return cfg


def check_sparsity(sparsity: float | None, method: str, options: dict[str, Any]) -> float:
    """The sparsity the method will reach: the requested one, or the one an N:M method fixes."""
    fixed = method_spec(method).sparsity_fixed_by(resolve_options(method, options))
    if sparsity is None:
        if fixed is None:
            raise UserError(f"method '{method}' needs --sparsity (a value in [0, 1), e.g. 0.9)")
        return fixed
    if not 0.0 <= sparsity < 1.0:
        raise UserError(f"sparsity {sparsity} is outside [0, 1); e.g. 0.9 prunes 90% of the prunable weights")
    if fixed is not None and abs(sparsity - fixed) > 1e-9:
        raise UserError(f"method '{method}' with these options fixes the sparsity at {fixed:g}, not {sparsity:g}")
    return sparsity


def refuse_nonfinite(tensors: Iterable[tuple[str, torch.Tensor]], where: str, hint: str = "") -> None:
    """Refuse the first floating-point tensor holding NaN or infinity, naming it: such a model
    evaluates to chance and compiles to garbage without any other error."""
    for name, t in tensors:
        if not t.is_floating_point():
            continue
        bad = int((~torch.isfinite(t)).sum())
        if bad:
            values = "value" if bad == 1 else "values"
            raise UserError(f"{where}: weight {name} has {bad} non-finite {values} (NaN/Inf){hint}")


def prune_context(workload: Workload, loaded: Loaded, exclude: Sequence[str] = ()) -> PruneContext:
    """What a method receives: the extracted model, its prunable weights (less ``exclude``), the
    source model and its hash, and the layers whose filters are task outputs."""
    return PruneContext(loaded.model, loaded.tasks, loaded.graph, prunable_parameters(loaded.model, exclude=exclude),
                        workload, workload.example(), source_model=loaded.source,
                        source_hash=state_hash(loaded.source.state_dict()),
                        output_layers=frozenset(output_layers(loaded.model)))  # fmt: skip


def finetune(ctx: PruneContext, masks: MaskSet, cfg: FinetuneConfig,
             progress: Callable[[int, float], None] | None = None) -> None:  # fmt: skip
    """Masked fine-tuning of ``ctx.model`` on its tasks, if ``cfg`` asks for any steps."""
    if cfg.steps > 0:
        masked_finetune(ctx.model, masks, ctx.workload, ctx.tasks, cfg, progress)


def prune(req: PruneRequest, hooks: Hooks | None = None) -> PruneResult:
    """Run the prune stage (see module docstring)."""
    hooks = hooks or Hooks()
    sparsity = check_sparsity(req.sparsity, req.method, req.options)
    pruner = make_pruner(req.method, req.options)
    workload = resolve_workload(req.workload)
    timings: dict[str, float] = {}

    hooks.stage("loading model and data")
    loaded = load_and_extract(workload, req.tasks, req.model, req.weights)
    refuse_nonfinite(loaded.source.state_dict().items(), req.weights or "the shipped weights",
                     "; pruning needs finite weights")  # fmt: skip
    ctx = prune_context(workload, loaded, req.exclude)
    model, tasks, graph = ctx.model, ctx.tasks, ctx.graph
    before = None
    if req.evaluate_before:
        hooks.stage("evaluating the dense model")
        before = evaluate(model, workload, tasks)

    hooks.stage(f"scoring and masking ({req.method})")
    t0 = time.perf_counter()
    masks = pruner.prune(ctx, sparsity)
    masks.apply(model)
    timings["scoring_s"] = time.perf_counter() - t0

    if req.finetune.steps > 0:
        hooks.stage(f"fine-tuning {req.finetune.steps} steps")
        t0 = time.perf_counter()
        finetune(ctx, masks, req.finetune, hooks.finetune_step)
        timings["finetune_s"] = time.perf_counter() - t0
        refuse_nonfinite(model.state_dict().items(), "fine-tuning diverged",
                         f" after {req.finetune.steps} steps at lr {req.finetune.lr:g}; try a lower --lr")  # fmt: skip

    hooks.stage("evaluating the pruned model")
    after = evaluate(model, workload, tasks)
    report = sparsity_report(masks.masks, graph)
    dt, dt_reason = delta_t_and_reason(after, before, workload)
    hooks.stage("exporting the model's graph")
    carried = carry_graph(model, workload_inputs(workload), tasks)
    meta = CheckpointMeta(
        edgeprune_version=__version__,
        workload=workload_reference(req.workload),
        model=req.model or workload.default_model,
        weights=str(Path(req.weights).resolve()) if req.weights else None,
        tasks=tasks,
        method=req.method,
        settings={**resolve_options(req.method, req.options), "sparsity": sparsity, "exclude": list(req.exclude),
                  "finetune": dataclasses.asdict(req.finetune)},
        source_hash=ctx.source_hash,
        granularity={k: str(g) for k, g in masks.granularity.items()},
        sparsity=report.overall.sparsity,
        method_info=masks.info,
        metrics=PruneMetrics(dense=before, pruned=after, delta_t=dt),
        graph=carried.info,
        graph_error=carried.reason,
    )  # fmt: skip
    return PruneResult(model, masks, graph, report, tasks, before, after, dt, meta, timings, carried, dt_reason)


def delta_t_and_reason(after: dict[str, dict[str, float]], before: dict[str, dict[str, float]] | None,
             workload: Workload) -> tuple[float | None, str | None]:  # fmt: skip
    """ΔT, or None and the reason: no dense model evaluated, or no finite metric to compare (JSON,
    and so the checkpoint, has no NaN)."""
    if not before:
        return None, "the dense model was not evaluated"
    pruned, dense = flatten(after), flatten(before)
    nonfinite = sorted({k for m in (dense, pruned) for k, v in m.items() if not math.isfinite(v)})
    if nonfinite:
        which = f"metric {nonfinite[0]} is" if len(nonfinite) == 1 else f"metrics {', '.join(nonfinite)} are"
        return None, f"{which} not a finite number"
    dt = delta_t(pruned, dense, workload.higher_is_better())
    if not math.isfinite(dt):
        return None, "every metric of the dense model is zero"
    return dt, None


def write_checkpoint(result: PruneResult, path: str | Path) -> None:
    save_checkpoint(path, result.model, result.masks, result.meta, result.carried)


def workload_inputs(workload: Workload) -> torch.Tensor:
    """The calibration inputs a checkpoint carries (at most :data:`CARRIED_INPUTS`)."""
    available = len(workload.split("calibration")[0])
    return workload.inputs_at(min(CARRIED_INPUTS, available))
