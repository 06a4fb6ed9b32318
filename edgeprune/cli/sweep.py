"""``edgeprune sweep``: the grid of prune -> evaluate -> compile -> bench, resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from edgeprune.cli.common import JsonOpt, _print_json, app, err, out
from edgeprune.errors import UserError

EXAMPLE = """Example sweep.toml:

  workload = "digits"
  sparsities = [0.5, 0.7, 0.9]
  targets = ["host"]
  [finetune]
  steps = 50
  [methods.magnitude]
  scope = "global"
  [methods.snip]
"""


def _csv(text: str | None, kind: type = str) -> list[Any] | None:
    if text is None:
        return None
    items = [p.strip() for p in text.split(",") if p.strip()]
    try:
        return [kind(p) for p in items]
    except ValueError:
        raise UserError(f"'{text}' is not a comma-separated list of {kind.__name__}s") from None


@app.command(epilog=EXAMPLE)
def sweep(
    config: Annotated[Path | None, typer.Argument(help="Sweep config (TOML; see below). Flags override its keys; without it give --workload and --methods.")] = None,  # noqa: E501
    output: Annotated[Path, typer.Option("--output", "-o", help="Results directory; an existing sweep's directory is resumed.")] = Path("sweep-results"),  # noqa: E501
    workload: Annotated[str | None, typer.Option("--workload", "-w", help="Workload (built-in name, FILE.py:ATTR, MODULE:ATTR).")] = None,  # noqa: E501
    model: Annotated[str | None, typer.Option(help="Model of the workload (default: its first).")] = None,
    tasks: Annotated[str | None, typer.Option("--tasks", "-t", help="Tasks to keep, comma-separated (default: all).")] = None,  # noqa: E501
    methods: Annotated[str | None, typer.Option("--methods", "-m", help="Methods, comma-separated, with their default options.")] = None,  # noqa: E501
    sparsities: Annotated[str | None, typer.Option("--sparsities", "-s", help="Sparsities, comma-separated (default: 0.5,0.7,0.9).")] = None,  # noqa: E501
    targets: Annotated[str | None, typer.Option(help="Targets, comma-separated (default: host).")] = None,
    finetune_steps: Annotated[int | None, typer.Option(help="Masked fine-tuning steps per cell (default: 0).")] = None,  # noqa: E501
    bench_seconds: Annotated[float | None, typer.Option(help="Timing budget of each bench (default: 2).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Start over: replace the output directory.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run prune -> evaluate -> compile -> bench for every method x sparsity (x granularity) of a
    workload, for every target and backend, into one results directory; the dense model is
    always a cell. A re-run skips the cells already done (an interrupted sweep continues where it
    stopped) and retries failed ones; a failed cell is recorded with its error and the sweep goes
    on (exit code 1 at the end). Artifacts for another architecture are compiled, not benched."""
    from edgeprune.contracts.sweep import SweepConfig, load_toml

    doc = load_toml(config) if config is not None else {}
    flags = {"workload": workload, "model": model, "tasks": _csv(tasks), "sparsities": _csv(sparsities, float),
             "targets": _csv(targets)}  # fmt: skip
    doc.update({k: v for k, v in flags.items() if v is not None})
    if methods is not None:
        doc["methods"] = {m: doc.get("methods", {}).get(m, {}) for m in _csv(methods) or []}
    if finetune_steps is not None:
        doc["finetune"] = {**doc.get("finetune", {}), "steps": finetune_steps}
    if bench_seconds is not None:
        doc["bench"] = {**doc.get("bench", {}), "seconds": bench_seconds}
    if "workload" not in doc or "methods" not in doc:
        raise UserError("give a sweep config file, or --workload and --methods (see edgeprune sweep --help)")
    cfg = SweepConfig.from_doc(doc, str(config) if config else "sweep flags")
    summary = _run(cfg, output, force, as_json)
    if as_json:
        _print_json(_json_summary(summary))
    else:
        _print_summary(summary)
    if summary.failed:
        raise typer.Exit(1)


def _run(cfg: Any, output: Path, force: bool, quiet: bool) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from edgeprune.sweep.run import SweepHooks, run_sweep

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("left"), TimeRemainingColumn(), console=err, disable=quiet,
                  transient=True) as progress:  # fmt: skip
        bar = progress.add_task("planning the sweep", total=None)
        current = {"label": ""}

        def on_cell(i: int, n: int, cell: Any, skipped: bool) -> None:
            current["label"] = f"cell {i + 1}/{n}: {cell.label}"
            label = current["label"] + (" (done before)" if skipped else "")
            progress.update(bar, total=n, completed=i, description=label)

        def on_step(step: str) -> None:
            progress.update(bar, description=f"{current['label']}: {step}")

        summary = run_sweep(cfg, output, force, SweepHooks(cell=on_cell, step=on_step))
        progress.update(bar, completed=len(summary.records))
    return summary


def _speedups(record: Any, out_dir: Path) -> dict[str, str]:
    from edgeprune.contracts.results import Results

    shown = {}
    for b in record.builds:
        where = f"{b.target}/{b.backend}"
        if b.status == "done" and b.results:
            r = Results.read(out_dir / "cells" / record.key / b.results)
            shown[where] = f"{r.speedup_p50:.2f}x"
        else:
            shown[where] = b.status
    return shown


def _json_summary(summary: Any) -> dict[str, Any]:
    return {"output": str(summary.out), "cells": len(summary.records), "skipped": summary.skipped,
            "failed": [r.key for r in summary.failed], "seconds": summary.seconds,
            "results": [{"key": r.key, "method": r.settings.method, "sparsity": r.sparsity,
                         "status": r.status, "error": r.error, "delta_t": r.delta_t,
                         "speedup_p50": _speedups(r, summary.out)} for r in summary.records]}  # fmt: skip


def _print_summary(summary: Any) -> None:
    from rich.table import Table

    table = Table(title=f"Sweep: {summary.out}", title_justify="left")
    for col in ("cell", "method", "sparsity", "ΔT", "sparse vs dense p50"):
        table.add_column(col, justify="left" if col in ("cell", "method", "sparse vs dense p50") else "right")
    for r in summary.records:
        s = r.settings
        sparsity = f"{100 * r.sparsity:.1f}%" if r.sparsity is not None else "-"
        dt = f"{r.delta_t:+.2f}%" if r.delta_t is not None else "-"
        speed = ", ".join(f"{k} {v}" for k, v in _speedups(r, summary.out).items()) or "-"
        shown = escape(speed) if r.status == "done" else f"[red]failed[/]: {escape(r.error or '')}"
        table.add_row(r.key[:8], escape(s.method), sparsity, dt, shown)
    out.print(table)
    out.print(f"{len(summary.records)} cells ({summary.skipped} done before) in {summary.seconds:.0f} s; "
              f"results in {summary.out}/")  # fmt: skip
    for r in summary.failed:
        errors = [r.error] if r.error and r.status == "failed" else [f"{b.target}: {b.error}" for b in r.builds
                                                                     if b.status == "failed"]  # fmt: skip
        err.print(f"[red]failed[/] {escape(r.settings.method)} {r.sparsity}: "
                  f"{escape('; '.join(e or '' for e in errors))}")


@app.command()
def report(
    results: Annotated[list[Path], typer.Argument(help="Sweep results directories (several sweeps or machines may be combined).")],  # noqa: E501
    output: Annotated[Path, typer.Option("--output", "-o", help="Report directory to write (index.html, report.md, plots).")] = Path("report"),  # noqa: E501
    budget: Annotated[str | None, typer.Option(help="Accuracy budget, e.g. dT=-2%: name the fastest configuration whose ΔT is at least -2%.")] = None,  # noqa: E501
    config: Annotated[str | None, typer.Option(help="Cell key (or its first characters) whose per-layer plot to draw (default: the fastest Pareto-optimal).")] = None,  # noqa: E501
    force: Annotated[bool, typer.Option("--force", help="Replace the output directory if it exists.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Draw what sweeps measured: ΔT and each task's metric against sparsity per method; latency
    (p50, p90 band) and energy against sparsity per target and backend, with the dense baseline;
    the accuracy-latency front with its Pareto-optimal configurations and the commands that
    reproduce them; per-layer sparsity and predicted speedup; provenance. Writes report.md and a
    self-contained index.html (no network) with PNG and SVG plots. Unreadable result files are
    left out and named."""
    from edgeprune.fsio import check_output
    from edgeprune.report.front import parse_budget

    check_output(output, force, directory=True)
    floor = parse_budget(budget) if budget is not None else None
    try:
        from edgeprune.report.write import write_report
    except ImportError as exc:
        raise UserError(f"report needs matplotlib and markdown ({exc.name} is missing): "
                        "pip install 'edgeprune[report]'") from None  # fmt: skip
    with err.status("drawing the report"):
        written = write_report(results, output, force, floor, config)
    chosen = {w: (p.row.label, p.row.cell.key, p.delta_t, p.p50_ms) if p else None for w, p in written.chosen.items()}
    if as_json:
        _print_json({"output": str(output), "plots": written.plots, "unreadable": written.bad,
                     "pareto": {w: [{"configuration": p.row.label, "key": p.row.cell.key, "delta_t": p.delta_t,
                                     "p50_ms": p.p50_ms, "command": p.row.command()} for p in front]
                                for w, front in written.pareto.items()},
                     "within_budget": {w: c and {"configuration": c[0], "key": c[1], "delta_t": c[2], "p50_ms": c[3]}
                                       for w, c in chosen.items()}})  # fmt: skip
        return
    for bad in written.bad:
        err.print(f"[yellow]left out[/] {escape(bad)}")
    for where, c in chosen.items():
        if budget is not None:
            pick = f"{c[0]} ({c[1][:8]}), ΔT {c[2]:+.2f}%, {c[3]:.3f} ms" if c else "none faster than the dense model"
            out.print(escape(f"{where}: fastest within {budget}: {pick}"))
    out.print(escape(f"wrote {output}/index.html and {output}/report.md ({len(written.plots)} plot files)"))
