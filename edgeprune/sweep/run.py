"""Running a sweep: every cell of the grid (:mod:`edgeprune.sweep.grid`) is pruned, evaluated,
compiled for each target and backend, and benched where the artifact runs on this machine, into
``OUT/cells/<key>/``. Every file is written atomically and ``cell.json`` after each step, so a
sweep stopped anywhere continues where it stopped: a re-run skips the cells (and the builds of a
cell) already done and retries the ones that failed. A failed cell is recorded with its error
and the sweep goes on.

The dense model is the first cell: its metrics are measured here, its latency in every bench
(each bench times the dense baseline and the sparse model in the same run).

Usage::

    summary = run_sweep(SweepConfig.from_toml(Path("sweep.toml")), Path("results"), force=False)
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from edgeprune import __version__
from edgeprune.bench.run import bench_artifact
from edgeprune.contracts.manifest import Manifest
from edgeprune.contracts.results import Results
from edgeprune.contracts.sweep import BuildRecord, CellRecord, SweepConfig, SweepIndex
from edgeprune.errors import UserError, interrupted, one_line
from edgeprune.evaluate import evaluate
from edgeprune.export.backends import BACKENDS
from edgeprune.export.compile import CompileRequest, compile_artifact
from edgeprune.fsio import check_output, output_lock, write_text_atomic
from edgeprune.prune.pipeline import PruneRequest, PruneResult, delta_t_and_reason, prune, write_checkpoint
from edgeprune.prune.source import load_and_extract
from edgeprune.resolution import parse_resolution
from edgeprune.runtime.elf import host_arch
from edgeprune.sweep.grid import DENSE, Cell, cells
from edgeprune.targets import load_target
from edgeprune.train.finetune import FinetuneConfig
from edgeprune.workload.base import Workload
from edgeprune.workload.registry import resolve_workload

INDEX = "sweep.json"
CELL = "cell.json"
CHECKPOINT = "model.ept"


@dataclasses.dataclass
class SweepHooks:
    """What a long sweep reports: a cell starting (index from 0, total, label, skipped or not)
    and a step within it."""

    cell: Callable[[int, int, Cell, bool], None] = lambda _i, _n, _c, _skip: None
    step: Callable[[str], None] = lambda _s: None


@dataclasses.dataclass
class SweepSummary:
    out: Path
    records: list[CellRecord]
    skipped: int
    seconds: float
    config: SweepConfig

    @property
    def failed(self) -> list[CellRecord]:
        """The cells that failed, or whose build for a configured target and backend did (a
        build for a target no longer configured is history, not a failure of this sweep)."""
        return [r for r in self.records
                if r.status == "failed" or any(b.status == "failed" for b in _wanted(r, self.config))]  # fmt: skip


def _wanted(record: CellRecord, config: SweepConfig) -> list[BuildRecord]:
    return [b for b in record.builds if b.target in config.targets and b.backend in config.backends]


def _current(build: BuildRecord, config: SweepConfig) -> bool:
    """The build was made with the configured compile and bench settings and did not fail."""
    return build.status != "failed" and build.input_size == config.input_size and build.bench == config.bench


def _open_results_dir(out: Path, config: SweepConfig, grid: list[Cell], force: bool) -> None:
    """A new directory, or one a sweep made (resumed), or with ``force`` any, replaced."""
    if out.exists() and not out.is_dir():
        raise UserError(f"output {out} is a file; a sweep writes a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / INDEX).is_file() and not force:
        raise UserError(f"output {out} is a directory that holds no {INDEX} (not a sweep's results); "
                        "use --force to replace it")  # fmt: skip
    if force and out.is_dir():
        shutil.rmtree(out)
    check_output(out, force=True, directory=True)  # writable
    (out / "cells").mkdir(parents=True, exist_ok=True)
    old = SweepIndex.read(out / INDEX).cells if (out / INDEX).is_file() else []
    keys = old + [c.key for c in grid if c.key not in old]
    index = SweepIndex(config=config, cells=keys, edgeprune_version=__version__)
    write_text_atomic(out / INDEX, index.to_json())


def run_sweep(config: SweepConfig, out: Path, force: bool = False, hooks: SweepHooks | None = None) -> SweepSummary:
    hooks = hooks or SweepHooks()
    grid = cells(config)  # every setting checked before any work
    workload = _check(config)
    t0 = time.perf_counter()
    with output_lock(out):
        _open_results_dir(out, config, grid, force)
        records, skipped = [], 0
        dense: dict[str, dict[str, float]] | None = None
        for i, cell in enumerate(grid):
            _unless_interrupted()
            cell_dir = out / "cells" / cell.key
            done = _done(cell_dir, config)
            hooks.cell(i, len(grid), cell, done is not None)
            if done is not None:
                record, skipped = done, skipped + 1
            else:
                record = _run_cell(cell, cell_dir, config, workload, dense, hooks.step)
            if cell.method == DENSE and record.status == "done":
                dense = _known(record.metrics)
            elif record.status == "done" and record.delta_t is None and dense is not None:
                record = _with_delta_t(record, dense, workload, cell_dir)  # the dense cell had failed before
            records.append(record)
    return SweepSummary(out, records, skipped, time.perf_counter() - t0, config)


def _with_delta_t(record: CellRecord, dense: dict[str, dict[str, float]], workload: Workload,
                  cell_dir: Path) -> CellRecord:  # fmt: skip
    """A finished cell's ΔT from its stored metrics, once the dense model's are known."""
    dt, reason = delta_t_and_reason(_known(record.metrics), dense, workload)
    record = record.model_copy(update={"delta_t": dt, "delta_t_reason": reason})
    _write(cell_dir, record)
    return record


def _check(config: SweepConfig) -> Workload:
    """What would make every cell fail, refused before any work: the workload, model and tasks,
    the targets, the backends, the input size. Returns the workload, resolved once."""
    workload = resolve_workload(config.workload)
    if config.model is not None and config.model not in workload.models:
        raise UserError(f"sweep config: model '{config.model}' is not in workload '{workload.name}' "
                        f"(it has: {', '.join(workload.models)})")  # fmt: skip
    unknown = [t for t in config.tasks or [] if t not in workload.tasks]
    if unknown:
        raise UserError(f"sweep config: task(s) {', '.join(unknown)} not in workload '{workload.name}' "
                        f"(it has: {', '.join(workload.tasks)})")  # fmt: skip
    for target in config.targets:
        load_target(target)
    for backend in config.backends:
        if backend not in BACKENDS:
            raise UserError(f"sweep config: unknown backend '{backend}' (known: {', '.join(BACKENDS)})")
    if config.input_size is not None:
        parse_resolution(config.input_size, "sweep config: input_size")
    return workload


def _done(cell_dir: Path, config: SweepConfig) -> CellRecord | None:
    """The cell's record when it and every configured build are done, else None (run it)."""
    record = _previous(cell_dir)
    if record is None or record.status != "done":
        return None
    if record.checkpoint is None:  # the dense cell
        return record
    builds = {(b.target, b.backend): b for b in record.builds}
    wanted = [(t, b) for t in config.targets for b in config.backends]
    if all(w in builds and _current(builds[w], config) for w in wanted):
        return record
    return None


def _write(cell_dir: Path, record: CellRecord) -> None:
    write_text_atomic(cell_dir / CELL, record.to_json())


def _run_cell(cell: Cell, cell_dir: Path, config: SweepConfig, workload: Workload,
              dense: dict[str, dict[str, float]] | None, step: Callable[[str], None]) -> CellRecord:  # fmt: skip
    cell_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    base = CellRecord(key=cell.key, settings=cell.settings, status="failed", edgeprune_version=__version__)
    try:
        if cell.method == DENSE:
            step("evaluating the dense model")
            loaded = load_and_extract(workload, config.tasks, config.model, None)
            metrics = evaluate(loaded.model, workload, loaded.tasks)
            record = base.model_copy(update={"status": "done", "metrics": _finite(metrics)})
        else:
            record = _prune_cell(cell, cell_dir, config, workload, dense, base, step)
    except Exception as exc:  # noqa: BLE001 - a failed cell is recorded and the sweep goes on
        _unless_interrupted(exc)
        record = base.model_copy(update={"error": _why(exc)})
    record = record.model_copy(update={"seconds": record.seconds + time.perf_counter() - start})
    _write(cell_dir, record)
    if record.status == "done" and record.checkpoint is not None:
        record = _build_cell(record, cell_dir, config, step)
    return record


def _prune_cell(cell: Cell, cell_dir: Path, config: SweepConfig, workload: Workload,
                dense: dict[str, dict[str, float]] | None, base: CellRecord,
                step: Callable[[str], None]) -> CellRecord:  # fmt: skip
    """Prune and evaluate (or reuse a checkpoint an earlier run of this cell wrote)."""
    previous = _previous(cell_dir)
    if previous is not None and previous.status == "done" and (cell_dir / CHECKPOINT).is_file():
        return previous
    ft = cell.settings.finetune or {}  # the sweep's budget, or the method's own finetune_steps
    req = PruneRequest(workload=config.workload, method=cell.method, sparsity=cell.sparsity, tasks=config.tasks,
                       model=config.model, options=cell.options,
                       finetune=FinetuneConfig(steps=ft["steps"], batch_size=ft["batch_size"], lr=ft["lr"]),
                       evaluate_before=False)  # fmt: skip
    step(f"pruning ({cell.label})")
    result = prune(req)
    write_checkpoint(result, cell_dir / CHECKPOINT)
    dt, reason = delta_t_and_reason(result.after, dense, workload)
    update = {"status": "done", "checkpoint": CHECKPOINT, "sparsity": result.report.overall.sparsity,
              "metrics": _finite(result.after), "delta_t": dt, "delta_t_reason": reason}  # fmt: skip
    return base.model_copy(update=update)


def _finite(metrics: dict[str, dict[str, float]]) -> dict[str, dict[str, float | None]]:
    """Metrics for JSON: a value a workload could not compute (NaN) is null."""
    return {t: {m: v if math.isfinite(v) else None for m, v in ms.items()} for t, ms in metrics.items()}


def _known(metrics: dict[str, dict[str, float | None]]) -> dict[str, dict[str, float]]:
    """Stored metrics without the ones a workload could not compute (null)."""
    return {t: {m: v for m, v in ms.items() if v is not None} for t, ms in metrics.items()}


def _unless_interrupted(exc: Exception | None = None) -> None:
    """Stop here when a signal arrived: a cleanup that failed while the signal unwound a cell is
    the signal, not the cell's failure, and a signal a library swallowed (one that arrived in a
    finalizer) still stops the sweep before its next step."""
    stop = interrupted()
    if stop is not None:
        raise stop from exc


def _why(exc: Exception) -> str:
    """What a failed cell or build records: a UserError's own line, else the exception's type too."""
    return one_line(exc, 500) if isinstance(exc, UserError) else f"{type(exc).__name__}: {one_line(exc, 400)}"


def _previous(cell_dir: Path) -> CellRecord | None:
    """The cell's record from an earlier run; None when there is none or it cannot be read (the
    cell then runs again)."""
    try:
        return CellRecord.read(cell_dir / CELL) if (cell_dir / CELL).is_file() else None
    except UserError:
        return None


def _build_cell(record: CellRecord, cell_dir: Path, config: SweepConfig, step: Callable[[str], None]) -> CellRecord:
    """Compile and bench for every target and backend not done yet; cell.json after each."""
    builds = {(b.target, b.backend): b for b in record.builds}
    size = parse_resolution(config.input_size) if config.input_size else None
    for target in config.targets:
        for backend in config.backends:
            if (target, backend) in builds and _current(builds[(target, backend)], config):
                continue
            _unless_interrupted()
            name = f"{target}-{backend}"
            art = cell_dir / name
            try:
                step(f"compiling for {target} ({backend})")
                manifest = compile_artifact(CompileRequest(cell_dir / CHECKPOINT, target, art, force=True,
                                                           input_size=size, backend=backend))  # fmt: skip
                build = _bench(manifest, art, name, target, backend, config, step)
            except Exception as exc:  # noqa: BLE001 - recorded; the sweep goes on
                _unless_interrupted(exc)
                build = BuildRecord(target=target, backend=backend, status="failed", error=_why(exc),
                                    input_size=config.input_size, bench=config.bench)  # fmt: skip
            builds[(target, backend)] = build
            record = record.model_copy(update={"builds": list(builds.values())})
            _write(cell_dir, record)
    return record


def _bench(manifest: Manifest, art: Path, name: str, target: str, backend: str, config: SweepConfig,
           step: Callable[[str], None]) -> BuildRecord:  # fmt: skip
    arch = manifest.library.arch if manifest.library else manifest.target.arch
    if arch not in ("native", host_arch()):
        why = (f"built for {arch}; this machine is {host_arch()}: run `edgeprune bench {name}` on the board "
               "(energy and latency are measured where the model runs)")  # fmt: skip
        return BuildRecord(target=target, backend=backend, status="not benched", artifact=name, error=why,
                           input_size=config.input_size, bench=config.bench)  # fmt: skip
    step(f"benching on this machine ({target}, {config.bench.seconds:g} s)")
    results = bench_artifact(art, config.bench.threads, config.bench.seconds)
    write_text_atomic(art / "results.json", results.to_json())
    return BuildRecord(target=target, backend=backend, status="done", artifact=name, results=f"{name}/results.json",
                       input_size=config.input_size, bench=config.bench)  # fmt: skip


def record_single(out: Path, config: SweepConfig, result: PruneResult, checkpoint: Path, artifact: Path,
                  results: Results) -> None:  # fmt: skip
    """A results directory (at ``out``, new) of a run a caller made itself (the demo: one
    method and sparsity, one build for the host) in the sweep's layout, so ``report`` draws it.
    ``config`` names exactly that run: its dense cell and one pruned cell."""
    dense_cell, cell = cells(config)
    _open_results_dir(out, config, [dense_cell, cell], force=False)
    metrics = _finite(result.before) if result.before else {}
    dense = CellRecord(key=dense_cell.key, settings=dense_cell.settings, status="done", metrics=metrics,
                       edgeprune_version=__version__)  # fmt: skip
    (out / "cells" / dense_cell.key).mkdir()
    _write(out / "cells" / dense_cell.key, dense)
    cell_dir = out / "cells" / cell.key
    cell_dir.mkdir()
    shutil.copyfile(checkpoint, cell_dir / CHECKPOINT)
    target, backend = config.targets[0], config.backends[0]
    name = f"{target}-{backend}"
    shutil.copytree(artifact, cell_dir / name)
    write_text_atomic(cell_dir / name / "results.json", results.to_json())
    build = BuildRecord(target=target, backend=backend, status="done", artifact=name, results=f"{name}/results.json",
                        input_size=config.input_size, bench=config.bench)  # fmt: skip
    record = CellRecord(key=cell.key, settings=cell.settings, status="done", checkpoint=CHECKPOINT,
                        sparsity=result.report.overall.sparsity, metrics=_finite(result.after),
                        delta_t=result.delta_t, delta_t_reason=result.delta_t_reason, builds=[build],
                        edgeprune_version=__version__)  # fmt: skip
    _write(cell_dir, record)
