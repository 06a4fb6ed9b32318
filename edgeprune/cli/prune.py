"""The prune stage's commands: ``inspect``, ``prune``, ``evaluate``, ``demo`` and the SMSP
mask library. PyTorch is imported inside the commands, never while the app is built."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from edgeprune.cli.common import (
    DENSE_WORKLOAD,
    CheckpointOrWorkloadOpt,
    ForceOpt,
    JsonOpt,
    ModelOpt,
    TasksOpt,
    ThreadsOpt,
    WeightsOpt,
    WorkloadOpt,
    _print_json,
    _size,
    _threads,
    app,
    check_finite,
    check_seconds,
    check_threads,
    err,
    json_text,
    out,
    writing,
)
from edgeprune.errors import UserError
from edgeprune.fsio import check_output

if TYPE_CHECKING:
    from rich.table import Table
from edgeprune.prune.registry import method_summaries


def _tasks(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise UserError("--tasks is empty; give a comma-separated list such as seg,depth")
    return names


def _metrics_table(title: str, columns: dict[str, dict[str, dict[str, float]] | None]) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("task")
    table.add_column("metric")
    present = {k: v for k, v in columns.items() if v is not None}
    for name in present:
        table.add_column(name, justify="right")
    first = next(iter(present.values()))
    for task, metrics in first.items():
        for metric in metrics:
            table.add_row(task, metric, *(f"{cols[task][metric]:.4f}" for cols in present.values()))
    return table


def _sparsity_table(report: Any) -> Table:
    from rich.table import Table

    table = Table(title=f"Sparsity over {report.denominator}", title_justify="left")
    for col, justify in (("component", "left"), ("prunable", "right"), ("pruned", "right"), ("sparsity", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for row in [*report.components, report.overall]:
        table.add_row(row.name, f"{row.numel:,}", f"{row.zeros:,}", f"{100 * row.sparsity:.2f}%")
    return table


@app.command()
def inspect(
    checkpoint: Annotated[Path | None, typer.Argument(help="A pruned checkpoint (.ept); omit to inspect a dense model.")] = None,  # noqa: E501
    workload: CheckpointOrWorkloadOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    tasks: TasksOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the task graph: per component its parameters, prunable weights, sparsity and the tasks using it."""
    from rich.table import Table

    from edgeprune.checkpoint import load_checkpoint, rebuild_model
    from edgeprune.masks import prunable_parameters, sparsity_report, weight_masks
    from edgeprune.prune.source import load_and_extract
    from edgeprune.taskgraph.graph import discover_task_graph
    from edgeprune.workload.registry import checkpoint_workload, resolve_workload

    status = err.status("loading the model and data (the first use of scenes renders them, ~15 s)")
    with status if not as_json else contextlib.nullcontext():
        if checkpoint is not None:
            ckpt = load_checkpoint(checkpoint)
            meta = ckpt.meta
            wl = checkpoint_workload(meta.workload, workload)
            net = rebuild_model(ckpt, wl)
            graph = discover_task_graph(net, wl.example())
            masks = ckpt.masks.masks
            header = {"workload": meta.workload if workload is None else workload, "model": meta.model,
                      "tasks": meta.tasks, "method": meta.method, "settings": meta.settings,
                      "source_hash": meta.source_hash}  # fmt: skip
        else:
            wl = resolve_workload(workload if workload is not None else DENSE_WORKLOAD)
            loaded = load_and_extract(wl, _tasks(tasks), model, str(weights) if weights else None)
            net, graph = loaded.model, loaded.graph
            masks = weight_masks(prunable_parameters(net))
            header = {"workload": wl.name, "model": model or wl.default_model, "tasks": list(graph.tasks)}
    report = sparsity_report(masks, graph)
    by_comp = {r.name: r for r in report.components}
    comps: list[dict[str, Any]] = []
    for c in graph.components():
        row = by_comp.get(c.name)
        comps.append({"component": c.name, "tasks": sorted(c.tasks, key=graph.tasks.index), "parameters": c.numel,
                      "prunable": row.numel if row else 0, "sparsity": row.sparsity if row else 0.0})  # fmt: skip
    if as_json:
        _print_json({**header, "components": comps, "denominator": report.denominator,
                     "overall_sparsity": report.overall.sparsity})  # fmt: skip
        return
    out.print(" ".join(f"[bold]{k}[/]={v}" for k, v in header.items() if k in ("workload", "model", "method", "tasks")))
    table = Table(title="Task graph (found by back-propagating each task)", title_justify="left")
    for col in ("component", "used by", "parameters", "prunable", "sparsity"):
        table.add_column(col, justify="left" if col in ("component", "used by") else "right")
    for comp in comps:
        table.add_row(comp["component"], ", ".join(comp["tasks"]), f"{comp['parameters']:,}",
                      f"{comp['prunable']:,}", f"{100 * comp['sparsity']:.2f}%")  # fmt: skip
    out.print(table)
    out.print(f"overall sparsity {100 * report.overall.sparsity:.2f}% over {report.denominator}")


@app.command()
def prune(
    output: Annotated[Path, typer.Option("--output", "-o", help="Pruned checkpoint to write (.ept).")],
    method: Annotated[str, typer.Option("--method", "-m", help="Pruning method: " + method_summaries())] = "magnitude",
    sparsity: Annotated[float | None, typer.Option("--sparsity", "-s", help="Overall share of prunable weights to remove, in [0, 1).")] = None,  # noqa: E501
    workload: WorkloadOpt = "scenes",
    tasks: TasksOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    granularity: Annotated[str | None, typer.Option(help="element, channel, block:RxC or N:M (random, magnitude); element, block:RxC or N:M (cut, adapmtl, snip, imp). N:M fixes the sparsity at 1 - N/M.")] = None,  # noqa: E501
    scope: Annotated[str | None, typer.Option(help="layer (same sparsity per layer) or global (one ranking).")] = None,
    allocate: Annotated[str | None, typer.Option(help="method (the method's own per-layer sparsities) or latency: the per-layer sparsities with the lowest latency predicted by --target's calibrated cost table, at the same overall sparsity (cut, snip, imp, magnitude, random).")] = None,  # noqa: E501
    target: Annotated[str | None, typer.Option(help="The board whose cost table --allocate latency reads (default host).")] = None,  # noqa: E501
    input_size: Annotated[str | None, typer.Option(help="Deploy resolution HxW --allocate latency plans for (default: the workload's).")] = None,  # noqa: E501
    pattern: Annotated[str | None, typer.Option(help="N:M pattern for method nm (default 2:4).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of method random.")] = None,
    fusion: Annotated[str | None, typer.Option(help="cut: fusion of shared weights' per-task masks: or, and, vote.")] = None,  # noqa: E501
    vote_min: Annotated[int | None, typer.Option(help="cut --fusion vote: tasks that must keep a weight (default: a majority).")] = None,  # noqa: E501
    calib_batches: Annotated[int | None, typer.Option(help="cut: calibration batches scored (default 50).")] = None,  # noqa: E501
    calib_batch_size: Annotated[int | None, typer.Option(help="cut, snip: calibration batch size (cut 8, snip 32).")] = None,  # noqa: E501
    rounds: Annotated[int | None, typer.Option(help="imp: pruning rounds (default 3).")] = None,
    train_steps: Annotated[int | None, typer.Option(help="adapmtl: co-training steps of weights and thresholds (default 1000).")] = None,  # noqa: E501
    train_lr: Annotated[float | None, typer.Option(help="adapmtl: weight learning rate while co-training (default 1e-4).")] = None,  # noqa: E501
    threshold_lr: Annotated[float | None, typer.Option(help="adapmtl: threshold learning rate (default 2e-3).")] = None,  # noqa: E501
    init_threshold: Annotated[float | None, typer.Option(help="adapmtl: initial s of sigmoid(s) (default: prunes 1/20 of the target).")] = None,  # noqa: E501
    window: Annotated[int | None, typer.Option(help="adapmtl: sliding window of the task weights (default 500).")] = None,  # noqa: E501
    warmup: Annotated[int | None, typer.Option(help="adapmtl: iterations before task weighting starts (default 100).")] = None,  # noqa: E501
    mask_library: Annotated[Path | None, typer.Option(help="smsp: mask library directory ('edgeprune mask-library add').")] = None,  # noqa: E501
    top_k: Annotated[int | None, typer.Option(help="smsp: most similar library tasks whose scores are summed (default 2).")] = None,  # noqa: E501
    from_scratch: Annotated[bool | None, typer.Option("--from-scratch", help="adapmtl: re-initialise the weights first.")] = None,  # noqa: E501
    round_steps: Annotated[int | None, typer.Option(help="imp: fine-tuning steps between rounds (default 100).")] = None,  # noqa: E501
    exclude: Annotated[list[str] | None, typer.Option(help="Glob of weights never pruned (repeatable), e.g. '*stem*'.")] = None,  # noqa: E501
    finetune_steps: Annotated[int | None, typer.Option(help="Masked fine-tuning steps after pruning (default: the method's recommendation, else 0).")] = None,  # noqa: E501
    lr: Annotated[float | None, typer.Option(help="Fine-tuning learning rate (default: the method's recommendation, else 1e-4).")] = None,  # noqa: E501
    batch_size: Annotated[int, typer.Option(help="Fine-tuning batch size.")] = 16,
    optimizer: Annotated[str, typer.Option(help="Fine-tuning optimiser: adam or sgd.")] = "adam",
    threads: ThreadsOpt = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Extract tasks, prune to a sparsity, optionally fine-tune, and write a pruned checkpoint.
    An existing output is replaced only with --force."""
    # Everything that can be checked without PyTorch is checked before it is imported: a bad
    # value or an output that cannot be written fails at once, not after the work.
    check_output(output, force, suffix=".ept")
    check_threads(threads)
    for value, option in ((sparsity, "--sparsity"), (lr, "--lr"), (train_lr, "--train-lr"),
                          (threshold_lr, "--threshold-lr"), (init_threshold, "--init-threshold")):  # fmt: skip
        check_finite(value, option)

    from edgeprune.prune.pipeline import PruneRequest, finetune_config, write_checkpoint

    _threads(threads)
    given = {"granularity": granularity, "scope": scope, "allocate": allocate, "target": target,
             "input_size": input_size,
             "pattern": pattern, "seed": seed, "fusion": fusion,
             "vote_min": vote_min, "calib_batches": calib_batches, "calib_batch_size": calib_batch_size,
             "rounds": rounds, "round_steps": round_steps, "train_steps": train_steps, "train_lr": train_lr,
             "threshold_lr": threshold_lr, "init_threshold": init_threshold, "window": window, "warmup": warmup,
             "from_scratch": from_scratch, "mask_library": str(mask_library) if mask_library else None,
             "top_k": top_k}
    req = PruneRequest(
        workload=workload, method=method, sparsity=sparsity, tasks=_tasks(tasks), model=model,
        weights=str(weights) if weights else None, options={k: v for k, v in given.items() if v is not None},
        finetune=finetune_config(method, steps=finetune_steps, lr=lr, batch_size=batch_size, optimizer=optimizer),
        exclude=tuple(exclude or ()),
    )  # fmt: skip
    result = _run_prune(req, quiet=as_json)
    with writing(output):
        write_checkpoint(result, output)
    if as_json:
        _print_json({"output": str(output), "tasks": result.tasks, "method": method,
                     "settings": result.meta.settings, "sparsity": result.report.to_dict(),
                     "dense": result.before, "pruned": result.after, **_delta_t_fields(result),
                     "timings": result.timings})  # fmt: skip
        return
    _print_prune_summary(result)
    out.print(f"wrote {output}")


def _run_prune(req: Any, quiet: bool) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from edgeprune.prune.pipeline import Hooks, prune

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, disable=quiet, transient=True) as progress:  # fmt: skip
        stage = progress.add_task("starting", total=None)
        ft = None

        def on_stage(name: str) -> None:
            progress.update(stage, description=name)

        def on_step(step: int, loss: float) -> None:
            nonlocal ft
            if ft is None:
                ft = progress.add_task("fine-tuning", total=req.finetune.steps)
            progress.update(ft, completed=step, description=f"fine-tuning (loss {loss:.3f})")

        return prune(req, Hooks(stage=on_stage, finetune_step=on_step))


def _delta_t_fields(result: Any) -> dict[str, Any]:
    """``delta_t`` for a JSON summary, and when it is ``null`` (no dense model evaluated, or no
    finite metric to compare), ``delta_t_reason``."""
    if result.delta_t is not None:
        return {"delta_t": result.delta_t}
    return {"delta_t": None, "delta_t_reason": result.delta_t_reason}


def _print_prune_summary(result: Any) -> None:
    out.print(_sparsity_table(result.report))
    out.print(_metrics_table("Per-task metrics", {"dense": result.before, "pruned": result.after}))
    if result.delta_t is not None:
        out.print(f"ΔT (mean relative change over all metrics, higher is better): {result.delta_t:+.2f}%")
    elif result.delta_t_reason:
        out.print(f"ΔT: not computed ({result.delta_t_reason})")
    out.print(" ".join(f"{k.removesuffix('_s')} {v:.1f}s" for k, v in result.timings.items()))


@app.command()
def evaluate(
    checkpoint: Annotated[Path | None, typer.Argument(help="A pruned checkpoint (.ept); omit to evaluate the dense model.")] = None,  # noqa: E501
    workload: CheckpointOrWorkloadOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    tasks: TasksOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the metrics as JSON here (an existing file only with --force).")] = None,  # noqa: E501
    threads: ThreadsOpt = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate a dense model or a pruned checkpoint on a workload's evaluation split."""
    if output is not None:
        check_output(output, force)
    check_threads(threads)

    from edgeprune.checkpoint import load_checkpoint, rebuild_model
    from edgeprune.evaluate import evaluate as run_eval
    from edgeprune.fsio import write_text_atomic
    from edgeprune.prune.pipeline import refuse_nonfinite
    from edgeprune.prune.source import load_and_extract
    from edgeprune.workload.registry import checkpoint_workload, resolve_workload

    _threads(threads)
    if checkpoint is not None:
        ckpt = load_checkpoint(checkpoint)  # refuses non-finite weights
        meta = ckpt.meta
        wl = checkpoint_workload(meta.workload, workload)
        net = rebuild_model(ckpt, wl)
        chosen = _tasks(tasks) or list(meta.tasks)
        unknown = [t for t in chosen if t not in meta.tasks]
        if unknown:
            raise UserError(f"unknown task(s) {', '.join(unknown)}; the checkpoint has: {', '.join(meta.tasks)}")
        source = {"checkpoint": str(checkpoint), "workload": meta.workload if workload is None else workload,
                  "model": meta.model}  # fmt: skip
    else:
        wl = resolve_workload(workload if workload is not None else DENSE_WORKLOAD)
        loaded = load_and_extract(wl, _tasks(tasks), model, str(weights) if weights else None)
        refuse_nonfinite(loaded.source.state_dict().items(), str(weights) if weights else "the shipped weights")
        net, chosen = loaded.model, loaded.tasks
        source = {"workload": wl.name, "model": model or wl.default_model}
    status = err.status("evaluating (the first use of scenes renders them, ~15 s)")
    with status if not as_json else contextlib.nullcontext():
        results = run_eval(net, wl, chosen)
    doc = {**source, "tasks": chosen, "metrics": results}
    if output is not None:
        with writing(output):
            write_text_atomic(output, json_text(doc))
    if as_json:
        _print_json(doc)
        return
    out.print(_metrics_table("Per-task metrics", {"value": results}))


@app.command()
def demo(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also keep the pruned checkpoint here (.ept; an existing file only with --force).")] = None,  # noqa: E501
    finetune_steps: Annotated[int, typer.Option(help="Masked fine-tuning steps.")] = 300,
    input_size: Annotated[str, typer.Option(help="Deploy resolution HxW of the compiled model.")] = "256x256",
    bench_seconds: Annotated[float, typer.Option(help="Timing budget of the sparse-vs-dense bench (at most 3600).")] = 5.0,  # noqa: E501
    report: Annotated[Path, typer.Option(help="Report directory to write (a report an earlier demo wrote there is replaced).")] = Path("demo-report"),  # noqa: E501
    threads: ThreadsOpt = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Show the whole pipeline on the built-in mtl-resnet + scenes: extract seg and depth, prune
    90% by magnitude, fine-tune briefly, evaluate, compile for this machine, time the sparse
    model against the dense one, and write a report of it (edgeprune report's)."""
    import tempfile

    if output is not None:
        check_output(output, force, suffix=".ept")
    from edgeprune.report.write import is_report

    check_output(report, force or is_report(report), directory=True)  # a report edgeprune wrote is replaced
    check_threads(threads)
    check_seconds(bench_seconds, "--bench-seconds")
    size = _size(input_size)
    if finetune_steps < 0:
        raise UserError(f"--finetune-steps must be at least 0, got {finetune_steps}")

    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    from edgeprune.bench.run import bench_artifact
    from edgeprune.cli.deploy import _print_bench
    from edgeprune.contracts.sweep import BenchSettings, FinetuneBudget, SweepConfig
    from edgeprune.export.compile import CompileRequest, compile_artifact
    from edgeprune.export.input_size import check_input_size
    from edgeprune.graph.carried import carry_graph, read_graph
    from edgeprune.prune.pipeline import PruneRequest, write_checkpoint
    from edgeprune.report.write import write_report
    from edgeprune.sweep.run import record_single
    from edgeprune.train.finetune import FinetuneConfig
    from edgeprune.workload.registry import resolve_workload

    _threads(threads)
    scenes = resolve_workload("scenes")  # the input size is checked against the model before the pruning
    status = err.status("checking --input-size (the first use of scenes renders them, ~15 s)")
    with status if not as_json else contextlib.nullcontext():
        name, tasks, x = scenes.default_model, list(scenes.tasks), scenes.inputs_at(2)
        carried = carry_graph(scenes.models[name].build().float(), x, tasks)
        graph = read_graph(carried.onnx, carried.info, carried.reason, tasks, x[:1].numpy(), name)
        check_input_size(*graph, name, x[:1].numpy(), size)
    req = PruneRequest(workload="scenes", method="magnitude", sparsity=0.9, tasks=["seg", "depth"],
                       options={"scope": "global"},
                       finetune=FinetuneConfig(steps=finetune_steps, batch_size=16, lr=1e-3))  # fmt: skip
    if not as_json:
        out.print("[bold]edgeprune demo[/]: mtl-resnet on scenes (seg, depth, normal) -> keep seg + depth, "
                  f"prune 90% (global magnitude), fine-tune {finetune_steps} steps, compile, bench")  # fmt: skip
    result = _run_prune(req, quiet=as_json)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = output or Path(tmp) / "demo.ept"
        with writing(ckpt):
            write_checkpoint(result, ckpt)
        with Progress(TextColumn("{task.description}"), TimeElapsedColumn(), console=err, disable=as_json,
                      transient=True) as progress:  # fmt: skip
            stage = progress.add_task("compiling", total=None)
            creq = CompileRequest(ckpt, "host", Path(tmp) / "artifact", input_size=size)
            manifest = compile_artifact(creq, lambda name: progress.update(stage, description=f"compiling: {name}"))
            progress.update(stage, description="timing sparse vs dense")
            bench = bench_artifact(Path(tmp) / "artifact", budget_s=bench_seconds)
            progress.update(stage, description="writing the report")
            config = SweepConfig(workload="scenes", tasks=req.tasks, methods={"magnitude": {"scope": "global"}},
                                 sparsities=[0.9], input_size=input_size, targets=["host"],
                                 finetune=FinetuneBudget(steps=finetune_steps, lr=1e-3, batch_size=16),
                                 bench=BenchSettings(seconds=bench_seconds, threads=threads))  # fmt: skip
            record_single(Path(tmp) / "results", config, result, ckpt, Path(tmp) / "artifact", bench)
            write_report([Path(tmp) / "results"], report, force=True)
    if as_json:
        _print_json({"tasks": result.tasks, "sparsity": result.report.to_dict(), "dense": result.before,
                     "pruned": result.after, **_delta_t_fields(result), "timings": result.timings,
                     "compile": {"formats": manifest.summary.formats, "input_size": list(size or ()),
                                 "size_ratio": manifest.summary.size_ratio},
                     "bench": bench.model_dump(mode="json"), "report": str(report / "index.html")})  # fmt: skip
        return
    params_before = sum(c.numel for c in result.graph.components())
    out.print(f"extracted {', '.join(result.tasks)}: the normal head is gone ({params_before:,} parameters left)")
    _print_prune_summary(result)
    s = manifest.summary
    out.print(f"compiled for this machine at {input_size}: formats {s.formats}, "
              f"model file {s.size_ratio:.2f}x the dense one")  # fmt: skip
    _print_bench(bench)
    dt = "ΔT not computed" if result.delta_t is None else f"ΔT {result.delta_t:+.2f}%"
    out.print(f"{dt} for {bench.speedup_p50:.2f}x lower p50 latency than the dense model")
    if output is not None:
        out.print(f"wrote {output}")
    out.print(f"report: {report / 'index.html'} (and report.md)")


mask_library_app = typer.Typer(help="The SMSP mask library: pruned results of earlier tasks.", no_args_is_help=True)
app.add_typer(mask_library_app, name="mask-library")
app.add_typer(mask_library_app, name="library", hidden=True)  # the old name, hidden, so scripts keep working
MaskLibraryOpt = Annotated[Path, typer.Option("--mask-library", "-l", help="Mask library directory.")]


@mask_library_app.command("add")
def mask_library_add(
    task: Annotated[str, typer.Option("--task", "-t", help="The task to prune alone and add.")],
    mask_library: MaskLibraryOpt,
    workload: WorkloadOpt = "digit-pool",
    model: ModelOpt = None,
    sparsity: Annotated[float, typer.Option("--sparsity", "-s", help="Structured sparsity of the entry.")] = 0.8,
    finetune_steps: Annotated[int, typer.Option(help="Masked fine-tuning steps before scoring.")] = 300,
    lr: Annotated[float, typer.Option(help="Fine-tuning learning rate.")] = 1e-3,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Prune TASK alone (structured, Taylor scores), fine-tune, and store its structure scores."""
    check_threads(threads)
    check_finite(sparsity, "--sparsity")
    check_finite(lr, "--lr")

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from edgeprune.prune.smsp_library import build_entry, save_entry

    _threads(threads)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, disable=as_json, transient=True) as progress:  # fmt: skip
        bar = progress.add_task(f"pruning and fine-tuning {task}", total=finetune_steps)
        entry = build_entry(workload, model, task, sparsity, finetune_steps, lr,
                            lambda step, _loss: progress.update(bar, completed=step))  # fmt: skip
    path = save_entry(entry, mask_library)
    if as_json:
        _print_json({"entry": str(path), "task": entry.task, "sparsity": entry.sparsity, "metrics": entry.metrics})
        return
    out.print(f"added {entry.task} ({100 * entry.sparsity:.1f}% sparse, {entry.metrics}) -> {path}")


@mask_library_app.command("list")
def mask_library_list(mask_library: MaskLibraryOpt, as_json: JsonOpt = False) -> None:
    """List the entries of a mask library."""
    from rich.table import Table

    from edgeprune.prune.smsp_library import load_library

    entries = load_library(mask_library)
    if as_json:
        _print_json({"entries": [{"task": e.task, "workload": e.workload, "model": e.model, "sparsity": e.sparsity,
                                  "source_hash": e.source_hash, "metrics": e.metrics} for e in entries]})  # fmt: skip
        return
    table = Table(title=f"Mask library {mask_library}", title_justify="left")
    for col in ("task", "workload", "model", "sparsity", "metrics", "model hash"):
        table.add_column(col)
    for e in entries:
        table.add_row(e.task, e.workload, e.model, f"{100 * e.sparsity:.1f}%", json.dumps(e.metrics),
                      e.source_hash[:12])  # fmt: skip
    out.print(table)
