"""The ``edgeprune`` command line: thin, it parses, calls the library and prints.

Exit codes: 0 success, 1 failure, 2 bad usage or bad input (one line on stderr, no traceback).
Human output goes to stdout; progress goes to stderr; ``--json`` prints one JSON document.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgeprune import __version__
from edgeprune.errors import UserError

app = typer.Typer(
    name="edgeprune",
    help="Prune multi-task PyTorch models and make the sparsity measurably faster on edge devices.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

WorkloadOpt = Annotated[str, typer.Option("--workload", "-w", help="Built-in name (scenes, digits), FILE.py:ATTR or MODULE:ATTR.")]  # noqa: E501
ModelOpt = Annotated[str | None, typer.Option(help="Model of the workload (default: its first, e.g. mtl-resnet).")]
WeightsOpt = Annotated[Path | None, typer.Option(help="Weights (safetensors) to use instead of the shipped ones.")]
TasksOpt = Annotated[str | None, typer.Option("--tasks", "-t", help="Comma-separated tasks to keep (default: all).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON summary on stdout.")]
ThreadsOpt = Annotated[int | None, typer.Option(help="CPU threads for PyTorch (default: all cores).")]


def _version(value: bool) -> None:
    if value:
        out.print(f"edgeprune {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,  # noqa: E501
) -> None:
    """Prune multi-task PyTorch models and make the sparsity measurably faster on edge devices."""


def _tasks(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise UserError("--tasks is empty; give a comma-separated list such as seg,depth")
    return names


def _threads(n: int | None) -> None:
    import torch

    if n is not None:
        if n < 1:
            raise UserError(f"--threads must be at least 1, got {n}")
        torch.set_num_threads(n)


def _check_output(path: Path, suffix: str | None = None) -> None:
    if path.exists() and path.is_dir():
        raise UserError(f"output {path} is a directory; give a file name")
    if suffix and path.suffix != suffix:
        raise UserError(f"output {path} should end in {suffix}")


def _metrics_table(title: str, columns: dict[str, dict[str, dict[str, float]] | None]) -> Table:
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
    table = Table(title=f"Sparsity over {report.denominator}", title_justify="left")
    for col, justify in (("component", "left"), ("prunable", "right"), ("pruned", "right"), ("sparsity", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for row in [*report.components, report.overall]:
        table.add_row(row.name, f"{row.numel:,}", f"{row.zeros:,}", f"{100 * row.sparsity:.2f}%")
    return table


def _print_json(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")


@app.command()
def inspect(
    checkpoint: Annotated[Path | None, typer.Argument(help="A pruned checkpoint (.ept); omit to inspect a dense model.")] = None,  # noqa: E501
    workload: WorkloadOpt = "scenes",
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    tasks: TasksOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the task graph: per component its parameters, prunable weights, sparsity and the tasks using it."""
    from edgeprune.checkpoint import load_checkpoint, rebuild_model
    from edgeprune.masks import prunable_parameters, sparsity_report, weight_masks
    from edgeprune.model.taskgraph import discover_task_graph
    from edgeprune.pipeline import load_and_extract
    from edgeprune.workload.registry import resolve_workload

    status = err.status("loading the model and data (the first use of scenes renders them, ~15 s)")
    with status if not as_json else contextlib.nullcontext():
        if checkpoint is not None:
            ckpt = load_checkpoint(checkpoint)
            wl = resolve_workload(ckpt.meta["workload"])
            net = rebuild_model(ckpt)
            graph = discover_task_graph(net, wl.example())
            masks = ckpt.masks.masks
            header = {k: ckpt.meta[k] for k in ("workload", "model", "tasks", "method", "settings", "source_hash")}
        else:
            wl = resolve_workload(workload)
            loaded = load_and_extract(wl, _tasks(tasks), model, str(weights) if weights else None)
            net, graph = loaded.model, loaded.graph
            masks = weight_masks(prunable_parameters(net))
            header = {"workload": wl.name, "model": model or wl.default_model, "tasks": list(graph.tasks)}
    report = sparsity_report(masks, graph)
    by_comp = {r.name: r for r in report.components}
    comps = []
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
    for c in comps:
        table.add_row(c["component"], ", ".join(c["tasks"]), f"{c['parameters']:,}", f"{c['prunable']:,}",
                      f"{100 * c['sparsity']:.2f}%")  # fmt: skip
    out.print(table)
    out.print(f"overall sparsity {100 * report.overall.sparsity:.2f}% over {report.denominator}")


def _method_help() -> str:
    try:
        from edgeprune.prune.base import REGISTRY, _load_builtin_methods
    except ImportError:  # a board's runtime install: no PyTorch, no pruning
        return "(needs PyTorch, which is not installed here)"
    _load_builtin_methods()
    return "; ".join(f"{s.name}: {s.summary}" for s in REGISTRY.values())


@app.command()
def prune(
    output: Annotated[Path, typer.Option("--output", "-o", help="Pruned checkpoint to write (.ept).")],
    method: Annotated[str, typer.Option("--method", "-m", help="Pruning method: " + _method_help())] = "magnitude",
    sparsity: Annotated[float | None, typer.Option("--sparsity", "-s", help="Overall share of prunable weights to remove, in [0, 1).")] = None,  # noqa: E501
    workload: WorkloadOpt = "scenes",
    tasks: TasksOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    granularity: Annotated[str | None, typer.Option(help="element, channel, block:RxC or N:M (random, magnitude).")] = None,  # noqa: E501
    scope: Annotated[str | None, typer.Option(help="layer (same sparsity per layer) or global (one ranking).")] = None,
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
    library: Annotated[Path | None, typer.Option(help="smsp: mask library directory ('edgeprune library add').")] = None,  # noqa: E501
    top_k: Annotated[int | None, typer.Option(help="smsp: most similar library tasks whose scores are summed (default 2).")] = None,  # noqa: E501
    from_scratch: Annotated[bool | None, typer.Option("--from-scratch", help="adapmtl: re-initialise the weights first.")] = None,  # noqa: E501
    round_steps: Annotated[int | None, typer.Option(help="imp: fine-tuning steps between rounds (default 100).")] = None,  # noqa: E501
    exclude: Annotated[list[str] | None, typer.Option(help="Glob of weights never pruned (repeatable), e.g. '*stem*'.")] = None,  # noqa: E501
    finetune_steps: Annotated[int | None, typer.Option(help="Masked fine-tuning steps after pruning (default: the method's recommendation, else 0).")] = None,  # noqa: E501
    lr: Annotated[float | None, typer.Option(help="Fine-tuning learning rate (default: the method's recommendation, else 1e-4).")] = None,  # noqa: E501
    batch_size: Annotated[int, typer.Option(help="Fine-tuning batch size.")] = 16,
    optimizer: Annotated[str, typer.Option(help="Fine-tuning optimiser: adam or sgd.")] = "adam",
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Extract tasks, prune to a sparsity, optionally fine-tune, and write a pruned checkpoint."""
    from edgeprune.pipeline import PruneRequest, finetune_config, write_checkpoint

    _threads(threads)
    _check_output(output, ".ept")
    given = {"granularity": granularity, "scope": scope, "pattern": pattern, "seed": seed, "fusion": fusion,
             "vote_min": vote_min, "calib_batches": calib_batches, "calib_batch_size": calib_batch_size,
             "rounds": rounds, "round_steps": round_steps, "train_steps": train_steps, "train_lr": train_lr,
             "threshold_lr": threshold_lr, "init_threshold": init_threshold, "window": window, "warmup": warmup,
             "from_scratch": from_scratch, "library": str(library) if library else None, "top_k": top_k}
    req = PruneRequest(
        workload=workload, method=method, sparsity=sparsity, tasks=_tasks(tasks), model=model,
        weights=str(weights) if weights else None, options={k: v for k, v in given.items() if v is not None},
        finetune=finetune_config(method, steps=finetune_steps, lr=lr, batch_size=batch_size, optimizer=optimizer),
        exclude=tuple(exclude or ()),
    )  # fmt: skip
    result = _run_prune(req, quiet=as_json)
    write_checkpoint(result, output)
    if as_json:
        _print_json({"output": str(output), "tasks": result.tasks, "method": method,
                     "settings": result.meta["settings"], "sparsity": result.report.to_dict(),
                     "dense": result.before, "pruned": result.after, "delta_t": result.delta_t,
                     "timings": result.timings})  # fmt: skip
        return
    _print_prune_summary(result)
    out.print(f"wrote {output}")


def _run_prune(req: Any, quiet: bool) -> Any:
    from edgeprune.pipeline import Hooks, prune

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


def _print_prune_summary(result: Any) -> None:
    out.print(_sparsity_table(result.report))
    out.print(_metrics_table("Per-task metrics", {"dense": result.before, "pruned": result.after}))
    if result.delta_t is not None:
        out.print(f"ΔT (mean relative change over all metrics, higher is better): {result.delta_t:+.2f}%")
    out.print(" ".join(f"{k.removesuffix('_s')} {v:.1f}s" for k, v in result.timings.items()))


@app.command()
def evaluate(
    checkpoint: Annotated[Path | None, typer.Argument(help="A pruned checkpoint (.ept); omit to evaluate the dense model.")] = None,  # noqa: E501
    workload: WorkloadOpt = "scenes",
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    tasks: TasksOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the metrics as JSON here.")] = None,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate a dense model or a pruned checkpoint on a workload's evaluation split."""
    from edgeprune.checkpoint import load_checkpoint, rebuild_model
    from edgeprune.evaluate import evaluate as run_eval
    from edgeprune.fsio import write_text_atomic
    from edgeprune.pipeline import load_and_extract
    from edgeprune.workload.registry import resolve_workload

    _threads(threads)
    if output is not None:
        _check_output(output)
    if checkpoint is not None:
        ckpt = load_checkpoint(checkpoint)
        wl = resolve_workload(ckpt.meta["workload"])
        net = rebuild_model(ckpt)
        chosen = _tasks(tasks) or list(ckpt.meta["tasks"])
        unknown = [t for t in chosen if t not in ckpt.meta["tasks"]]
        if unknown:
            known = ", ".join(ckpt.meta["tasks"])
            raise UserError(f"unknown task(s) {', '.join(unknown)}; the checkpoint has: {known}")
        source = {"checkpoint": str(checkpoint), "workload": ckpt.meta["workload"], "model": ckpt.meta["model"]}
    else:
        wl = resolve_workload(workload)
        loaded = load_and_extract(wl, _tasks(tasks), model, str(weights) if weights else None)
        net, chosen = loaded.model, loaded.tasks
        source = {"workload": wl.name, "model": model or wl.default_model}
    status = err.status("evaluating (the first use of scenes renders them, ~15 s)")
    with status if not as_json else contextlib.nullcontext():
        results = run_eval(net, wl, chosen)
    doc = {**source, "tasks": chosen, "metrics": results}
    if output is not None:
        write_text_atomic(output, json.dumps(doc, indent=2) + "\n")
    if as_json:
        _print_json(doc)
        return
    out.print(_metrics_table("Per-task metrics", {"value": results}))


@app.command()
def demo(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also keep the pruned checkpoint here (.ept).")] = None,  # noqa: E501
    finetune_steps: Annotated[int, typer.Option(help="Masked fine-tuning steps.")] = 300,
    input_size: Annotated[str, typer.Option(help="Deploy resolution HxW of the compiled model.")] = "256x256",
    bench_seconds: Annotated[float, typer.Option(help="Timing budget of the sparse-vs-dense bench.")] = 5.0,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the whole pipeline on the built-in mtl-resnet + scenes: extract seg and depth, prune
    90% by magnitude, fine-tune briefly, evaluate, compile for this machine and time the sparse
    model against the dense one."""
    import tempfile

    from edgeprune.bench.run import bench_artifact
    from edgeprune.export.compile import CompileRequest, compile_artifact
    from edgeprune.finetune import FinetuneConfig
    from edgeprune.pipeline import PruneRequest, write_checkpoint

    _threads(threads)
    size = _size(input_size)
    if output is not None:
        _check_output(output, ".ept")
    if bench_seconds <= 0:
        raise UserError(f"--bench-seconds must be positive, got {bench_seconds}")
    req = PruneRequest(workload="scenes", method="magnitude", sparsity=0.9, tasks=["seg", "depth"],
                       options={"scope": "global"},
                       finetune=FinetuneConfig(steps=finetune_steps, batch_size=16, lr=1e-3))  # fmt: skip
    if not as_json:
        out.print("[bold]edgeprune demo[/]: mtl-resnet on scenes (seg, depth, normal) -> keep seg + depth, "
                  f"prune 90% (global magnitude), fine-tune {finetune_steps} steps, compile, bench")  # fmt: skip
    result = _run_prune(req, quiet=as_json)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = output or Path(tmp) / "demo.ept"
        write_checkpoint(result, ckpt)
        with Progress(TextColumn("{task.description}"), TimeElapsedColumn(), console=err, disable=as_json,
                      transient=True) as progress:  # fmt: skip
            stage = progress.add_task("compiling", total=None)
            creq = CompileRequest(ckpt, "host", Path(tmp) / "artifact", input_size=size)
            manifest = compile_artifact(creq, lambda name: progress.update(stage, description=f"compiling: {name}"))
            progress.update(stage, description="timing sparse vs dense")
            bench = bench_artifact(Path(tmp) / "artifact", budget_s=bench_seconds)
    if as_json:
        _print_json({"tasks": result.tasks, "sparsity": result.report.to_dict(), "dense": result.before,
                     "pruned": result.after, "delta_t": result.delta_t, "timings": result.timings,
                     "compile": {"formats": manifest["summary"]["formats"], "input_size": list(size or ()),
                                 "size_ratio": manifest["summary"]["size_ratio"]},
                     "bench": bench})  # fmt: skip
        return
    params_before = sum(c.numel for c in result.graph.components())
    out.print(f"extracted {', '.join(result.tasks)}: the normal head is gone ({params_before:,} parameters left)")
    _print_prune_summary(result)
    s = manifest["summary"]
    out.print(f"compiled for this machine at {input_size}: formats {s['formats']}, "
              f"model file {s['size_ratio']:.2f}x the dense one")  # fmt: skip
    _print_bench(bench)
    out.print(f"ΔT {result.delta_t:+.2f}% for {bench['speedup_p50']:.2f}x lower p50 latency than the dense model")
    if output is not None:
        out.print(f"wrote {output}")


TargetOpt = Annotated[str, typer.Option("--target", help="Target board or family (edgeprune targets lists them).")]
TargetsDirOpt = Annotated[Path | None, typer.Option("--targets-dir", help="Directory of your own target files (.toml), searched first; also EDGEPRUNE_TARGETS_PATH.")]  # noqa: E501

targets_app = typer.Typer(help="Target boards: one TOML file each.", invoke_without_command=True)
app.add_typer(targets_app, name="targets")


@targets_app.callback()
def targets_list(ctx: typer.Context, targets_dir: TargetsDirOpt = None, as_json: JsonOpt = False) -> None:
    """List the known targets (shipped and your own)."""
    from edgeprune.targets import known_targets, load_target

    if ctx.invoked_subcommand is not None:
        return
    targets = [load_target(n, targets_dir) for n in known_targets(targets_dir)]
    if as_json:
        _print_json({"targets": [t.to_dict() for t in targets]})
        return
    table = Table(title="Targets", title_justify="left")
    for col in ("name", "family", "cpu", "gpu", "description"):
        table.add_column(col)
    for t in targets:
        family = t.family + (" (default)" if t.family_default and t.family != t.name else "")
        cpu = t.cpu.arch + (f" {' '.join(t.cpu.flags)}" if t.cpu.flags else "")
        table.add_row(t.name, family, cpu, t.gpu.cuda_arch if t.gpu else "", t.description)
    out.print(table)


@targets_app.command("show")
def targets_show(
    name: Annotated[str, typer.Argument(help="Target or family name.")],
    targets_dir: TargetsDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print one target: CPU, GPU, power sensors, kernel library and calibration table."""
    from edgeprune.targets import load_target

    t = load_target(name, targets_dir)
    if as_json:
        _print_json(t.to_dict())
        return
    out.print(f"[bold]{t.name}[/]: {t.description} ({t.path})")
    for section, value in (("cpu", t.cpu), ("gpu", t.gpu), ("power", t.power)):
        if value is not None:
            fields = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(value).items() if v not in ("", (), 0))
            out.print(f"  {section}: {fields}")
    out.print(f"  kernels: library={t.library}, calibration={t.calibration_path}")


@app.command("compile")
def compile_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="Pruned checkpoint (.ept).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Artifact directory to write.")],
    target: TargetOpt = "host",
    format_policy: Annotated[str, typer.Option(help="auto (cost model), or force dense, csr, bsr or nm.")] = "auto",
    input_size: Annotated[str | None, typer.Option(help="Deploy resolution HxW, e.g. 224x224 (default: the workload's).")] = None,  # noqa: E501
    force: Annotated[bool, typer.Option("--force", help="Replace the output directory if it exists.")] = False,
    targets_dir: TargetsDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Turn a pruned checkpoint into an artifact for a target: sparse ONNX (runs in stock
    onnxruntime, faster with the kernel library), dense baseline, kernel library, manifest."""
    from edgeprune.export.compile import CompileRequest, compile_artifact

    req = CompileRequest(checkpoint, target, output, format_policy, force, _size(input_size), targets_dir)
    with Progress(TextColumn("{task.description}"), TimeElapsedColumn(), console=err, disable=as_json,
                  transient=True) as progress:  # fmt: skip
        stage = progress.add_task("starting", total=None)
        manifest = compile_artifact(req, lambda name: progress.update(stage, description=name))
    if as_json:
        _print_json(manifest)
        return
    _print_layers(manifest)
    s = manifest["summary"]
    chk = manifest["check"]
    out.print(f"formats: {s['formats']}; model.onnx {s['model_bytes'] / 1e6:.2f} MB vs dense "
              f"{s['dense_bytes'] / 1e6:.2f} MB ({s['size_ratio']:.2f}x)")
    with_lib = chk["max_rel_error_with_library"]
    lib_text = chk.get("with_library", "") if with_lib is None else f"{with_lib:.2e} with the library"
    out.print(f"outputs vs dense ONNX: max relative error {chk['max_rel_error_fallback']:.2e} without the library; "
              f"{lib_text}")  # fmt: skip
    if "gpu" in manifest:
        trt = manifest["gpu"]["tensorrt"]
        out.print(f"GPU ({manifest['gpu']['cuda_arch']}): " + (trt["skipped"] if "skipped" in trt else
                  f"TensorRT-ready {trt['onnx']} with 2:4 weights; on the board: {trt['build']}"))  # fmt: skip
    out.print(f"wrote {output}/ (target {manifest['target']['name']}, {manifest['target']['arch']})")


def _size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise UserError(f"--input-size '{text}' is not HxW (e.g. 224x224)")
    return int(parts[0]), int(parts[1])


def _print_layers(manifest: dict[str, Any]) -> None:
    table = Table(title="Per-layer formats", title_justify="left")
    for col in ("layer", "weight", "density", "format", "predicted vs dense"):
        table.add_column(col)
    for layer in manifest["layers"]:
        fmt = layer["format"] + (f" {layer['block'][0]}x{layer['block'][1]}" if layer["block"] else "")
        fmt += f" {layer['nm'][0]}:{layer['nm'][1]}" if layer["nm"] else ""
        fmt += f" +{layer['activation']}" if layer["format"] != "dense" and layer["activation"] != "none" else ""
        pred = "" if layer["predicted_ratio"] is None else f"{layer['predicted_ratio']:.2f}x"
        table.add_row(layer["name"], "x".join(map(str, layer["weight_shape"])), f"{layer['density']:.3f}", fmt,
                      pred + (f" ({layer['note']})" if layer["note"] else ""))  # fmt: skip
    out.print(table)


@app.command()
def calibrate(
    target: TargetOpt = "host",
    library: Annotated[Path | None, typer.Option(help="Kernel library to time (default: the host build; on a board, an artifact's).")] = None,  # noqa: E501
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Where to write the table (default: the target's).")] = None,  # noqa: E501
    threads: Annotated[int | None, typer.Option(help="Threads (default: the target's).")] = None,
    targets_dir: TargetsDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure each sparse format against onnxruntime's dense Conv on this machine and write the
    cost table the compiler's format chooser reads. Run it on the target itself."""
    from edgeprune.bench.calibrate import calibrate as run_calibration
    from edgeprune.runtime.library import host_arch, host_library
    from edgeprune.targets import load_target

    t = load_target(target, targets_dir)
    if t.arch not in ("native", host_arch()):
        raise UserError(f"calibrate measures the machine it runs on: run it on the {t.name} board ({t.arch}), "
                        f"not on this {host_arch()} machine")  # fmt: skip
    if threads is not None and threads < 1:
        raise UserError(f"--threads must be at least 1, got {threads}")
    with Progress(TextColumn("timing kernels"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                  disable=as_json, transient=True) as progress:  # fmt: skip
        bar = progress.add_task("calibrate", total=None)
        table = run_calibration(t.name, library or host_library(), threads or t.threads,
                                progress=lambda i, n: progress.update(bar, completed=i, total=n))  # fmt: skip
    path = output or t.calibration_path
    table.save(path)
    if as_json:
        _print_json(table.to_dict())
        return
    for (kind, fmt), pts in sorted(table.curves.items()):
        out.print(f"{kind:4s} {fmt:6s} " + "  ".join(f"{d:.2f}:{r:.2f}" for d, r in pts))
    out.print(f"wrote {path}")


@app.command()
def bench(
    artifact: Annotated[Path, typer.Argument(help="Artifact directory made by edgeprune compile.")],
    threads: Annotated[int | None, typer.Option(help="Threads (default: the target's).")] = None,
    seconds: Annotated[float, typer.Option(help="Timing budget; more seconds, steadier tails.")] = 10.0,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="results.json path (default: in the artifact).")] = None,  # noqa: E501
    as_json: JsonOpt = False,
) -> None:
    """Time the sparse model against the dense baseline of the same checkpoint, interleaved in
    the same run: p50/p90/p99 latency, peak memory, ratio."""
    from edgeprune.bench.run import bench_artifact
    from edgeprune.fsio import write_text_atomic

    if seconds <= 0:
        raise UserError(f"--seconds must be positive, got {seconds}")
    with Progress(TextColumn("timing sparse vs dense"), TimeElapsedColumn(), console=err, disable=as_json,
                  transient=True) as progress:  # fmt: skip
        progress.add_task("bench", total=None)
        results = bench_artifact(artifact, threads, seconds)
    path = output or artifact / "results.json"
    write_text_atomic(path, json.dumps(results, indent=1) + "\n")
    if as_json:
        _print_json(results)
        return
    _print_bench(results)
    out.print(f"wrote {path}")


def _print_bench(r: dict[str, Any]) -> None:
    table = Table(title=f"Latency on {r['device']['cpu']} ({r['device']['isa']}, {r['threads']} thread(s))",
                  title_justify="left")  # fmt: skip
    for col in ("model", "p50 ms", "p90 ms", "p99 ms", "runs", "peak RSS MiB"):
        table.add_column(col)
    for name in ("dense", "sparse"):
        lat = r["latency"][name]
        mem = r["memory"][f"{name}_peak_rss_mib"]
        table.add_row(name, f"{lat['p50_ms']:.3f}", f"{lat['p90_ms']:.3f}", f"{lat['p99_ms']:.3f}", str(lat["runs"]),
                      "n/a" if mem is None else f"{mem:.0f}")  # fmt: skip
    out.print(table)
    out.print(f"sparse/dense p50: {r['ratio_p50']:.3f} ({r['speedup_p50']:.2f}x faster); energy: {r['energy_reason']}")


@app.command()
def verify(
    artifact: Annotated[Path, typer.Argument(help="Artifact directory made by edgeprune compile.")],
    checkpoint: Annotated[Path | None, typer.Option(help="The source checkpoint (default: the path in the manifest).")] = None,  # noqa: E501
    samples: Annotated[int, typer.Option(help="Sample inputs to run.")] = 2,
    as_json: JsonOpt = False,
) -> None:
    """Run the artifact for its own target (under qemu-aarch64 with the board's CPU model for an
    ARM board) and compare every task output with the host PyTorch model: PASS/FAIL per output.
    Exit code 1 when any output fails."""
    from edgeprune.verify.run import ATOL, RTOL, verify_artifact

    with Progress(TextColumn("running the artifact (an emulated board takes a while)"), TimeElapsedColumn(),
                  console=err, disable=as_json, transient=True) as progress:  # fmt: skip
        progress.add_task("verify", total=None)
        result = verify_artifact(artifact, checkpoint, samples)
    checks = result.checks
    ok = all(c.passed for c in checks)
    if as_json:
        _print_json({"artifact": str(artifact), "ran": result.ran, "reference": result.reference, "passed": ok,
                     "rtol": RTOL, "outputs": [dataclasses.asdict(c) for c in checks]})  # fmt: skip
    else:
        out.print(f"ran {artifact} with {result.ran}; each output against {result.reference} "
                  f"(tolerance {RTOL:g} relative + {ATOL:g} absolute):")  # fmt: skip
        for c in checks:
            mark = "[green]PASS[/]" if c.passed else "[red]FAIL[/]"
            out.print(f"  {mark} sample {c.sample} {c.task}: max abs err {c.max_abs:.2e}, worst error "
                      f"{c.of_tolerance:.3f} of the tolerance")  # fmt: skip
        out.print("PASS" if ok else "FAIL")
    if not ok:
        raise typer.Exit(1)


library_app = typer.Typer(help="The SMSP mask library: pruned results of earlier tasks.", no_args_is_help=True)
app.add_typer(library_app, name="library")
LibraryOpt = Annotated[Path, typer.Option("--library", "-l", help="Mask library directory.")]


@library_app.command("add")
def library_add(
    task: Annotated[str, typer.Option("--task", "-t", help="The task to prune alone and add.")],
    library: LibraryOpt,
    workload: WorkloadOpt = "digit-pool",
    model: ModelOpt = None,
    sparsity: Annotated[float, typer.Option("--sparsity", "-s", help="Structured sparsity of the entry.")] = 0.8,
    finetune_steps: Annotated[int, typer.Option(help="Masked fine-tuning steps before scoring.")] = 300,
    lr: Annotated[float, typer.Option(help="Fine-tuning learning rate.")] = 1e-3,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Prune TASK alone (structured, Taylor scores), fine-tune, and store its structure scores."""
    from edgeprune.library import build_entry, save_entry

    _threads(threads)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, disable=as_json, transient=True) as progress:  # fmt: skip
        bar = progress.add_task(f"pruning and fine-tuning {task}", total=finetune_steps)
        entry = build_entry(workload, model, task, sparsity, finetune_steps, lr,
                            lambda step, _loss: progress.update(bar, completed=step))  # fmt: skip
    path = save_entry(entry, library)
    if as_json:
        _print_json({"entry": str(path), "task": entry.task, "sparsity": entry.sparsity, "metrics": entry.metrics})
        return
    out.print(f"added {entry.task} ({100 * entry.sparsity:.1f}% sparse, {entry.metrics}) -> {path}")


@library_app.command("list")
def library_list(library: LibraryOpt, as_json: JsonOpt = False) -> None:
    """List the entries of a mask library."""
    from edgeprune.library import load_library

    entries = load_library(library)
    if as_json:
        _print_json({"entries": [{"task": e.task, "workload": e.workload, "model": e.model, "sparsity": e.sparsity,
                                  "source_hash": e.source_hash, "metrics": e.metrics} for e in entries]})  # fmt: skip
        return
    table = Table(title=f"Mask library {library}", title_justify="left")
    for col in ("task", "workload", "model", "sparsity", "metrics", "model hash"):
        table.add_column(col)
    for e in entries:
        table.add_row(e.task, e.workload, e.model, f"{100 * e.sparsity:.1f}%", json.dumps(e.metrics),
                      e.source_hash[:12])  # fmt: skip
    out.print(table)


def main() -> None:
    """Console entry point: user errors become one line and exit code 2."""
    try:
        app()
    except UserError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except ModuleNotFoundError as exc:
        if exc.name != "torch":
            raise
        err.print("[red]error:[/] this command needs PyTorch, which this runtime install does not have "
                  "(bench, verify and targets run without it)", highlight=False, soft_wrap=True)  # fmt: skip
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
