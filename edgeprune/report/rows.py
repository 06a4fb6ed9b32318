"""What a report reads: every cell of every sweep results directory given, with its bench
results and artifact manifest, as one row per cell x target x backend. A file that cannot be
read (corrupt, an unknown format version) is skipped and named; only when nothing at all is
readable is that an error.

Usage::

    found = load_rows([Path("results/"), Path("other-machine/")])
    found.rows, found.dense, found.bad
"""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path
from typing import Any

from edgeprune.contracts.manifest import Manifest
from edgeprune.contracts.results import Results
from edgeprune.contracts.sweep import CellRecord, CellSettings, SweepIndex
from edgeprune.errors import UserError, one_line
from edgeprune.fsio import sha256_file
from edgeprune.prune.registry import METHODS, option_flag


@dataclasses.dataclass
class Row:
    """One pruned configuration on one target and backend (the dense cell: no build)."""

    sweep: Path
    cell: CellRecord
    target: str | None = None
    backend: str | None = None
    status: str = ""  # the build's: done | failed | not benched
    note: str = ""  # the build's error or why it was not benched
    results: Results | None = None
    manifest: Manifest | None = None
    manifest_sha: str | None = None
    input_size: str | None = None  # the build's deploy resolution

    @property
    def method(self) -> str:
        return self.cell.settings.method

    @property
    def granularity(self) -> str:
        return str(self.cell.settings.options.get("granularity") or "element")

    @property
    def label(self) -> str:
        s = f"{self.method} {100 * (self.cell.sparsity or 0):.0f}%"
        return s if self.granularity == "element" else f"{s} {self.granularity}"

    @property
    def where(self) -> str:
        return f"{self.target}/{self.backend}"

    def command(self) -> str:
        """The commands that reproduce this configuration."""
        s = self.cell.settings
        parts = ["edgeprune prune", f"-w {shlex.quote(s.workload)}"]
        parts += [f"--model {shlex.quote(s.model)}"] if s.model else []
        parts += [f"-t {shlex.quote(','.join(s.tasks))}"] if s.tasks else []
        parts.append(f"-m {shlex.quote(s.method)}")
        parts += [f"-s {s.sparsity:g}"] if s.sparsity is not None else []
        for key, value in _given_options(s).items():
            parts.append(option_flag(key) if value is True else f"{option_flag(key)} {shlex.quote(str(value))}")
        ft = s.finetune or {}
        if ft.get("steps"):
            parts += [f"--finetune-steps {ft['steps']}", f"--lr {ft.get('lr')}", f"--batch-size {ft.get('batch_size')}"]
        size = f" --input-size {shlex.quote(self.input_size)}" if self.input_size else ""
        return (f"{' '.join(parts)} -o pruned.ept && edgeprune compile pruned.ept --target {self.target} "
                f"--backend {self.backend}{size} -o artifact && edgeprune bench artifact")  # fmt: skip


def _given_options(settings: CellSettings) -> dict[str, Any]:
    """The method's options that differ from its defaults (what the user has to type)."""
    spec = METHODS.get(settings.method)
    defaults = spec.options if spec else {}
    return {k: v for k, v in settings.options.items()
            if v is not None and v is not False and defaults.get(k) != v}  # fmt: skip


CELL_FILE = "cell.json"


@dataclasses.dataclass
class Found:
    rows: list[Row]  # pruned configurations (one per cell x build)
    dense: list[Row]  # the dense cells, one per sweep
    bad: list[str]  # "path: why" for each file that could not be read
    sweeps: list[Path]


def _cells_of(directory: Path) -> list[Path]:
    if (directory / "sweep.json").is_file():
        SweepIndex.read(directory / "sweep.json")  # the format, checked
    return sorted((directory / "cells").glob("*/cell.json"))


def load_rows(inputs: list[Path]) -> Found:
    found = Found([], [], [], [])
    for directory in inputs:
        if not directory.is_dir():
            raise UserError(f"results directory not found: {directory}")
        try:
            paths = _cells_of(directory)
        except UserError as exc:
            found.bad.append(one_line(exc))
            continue
        if not paths:
            found.bad.append(f"{directory}: no cells (cells/*/cell.json); not a sweep's results directory")
            continue
        found.sweeps.append(directory)
        for path in paths:
            try:
                cell = CellRecord.read(path)
            except UserError as exc:
                found.bad.append(one_line(exc))
                continue
            if cell.status != "done":
                found.bad.append(f"{path}: the cell failed: {cell.error}")
                continue
            if cell.checkpoint is None:
                found.dense.append(Row(directory, cell))
                continue
            for build in cell.builds:
                found.rows.append(_row(directory, path.parent, cell, build, found.bad))
    if not found.rows and not found.dense:
        why = "; ".join(found.bad[:3]) or "nothing given"
        raise UserError(f"no readable results in {', '.join(map(str, inputs))} ({why})")
    return found


def _row(sweep: Path, cell_dir: Path, cell: CellRecord, build: Any, bad: list[str]) -> Row:  # noqa: ANN401
    row = Row(sweep, cell, build.target, build.backend, build.status, build.error or "", input_size=build.input_size)
    for name in (build.artifact, build.results):  # names inside the cell (checked) that stay inside: no link out
        if name is not None and not (cell_dir / name).resolve().is_relative_to(cell_dir.resolve()):
            bad.append(f"{cell_dir / CELL_FILE}: {name} leads out of the cell's directory")
            row.status, row.note = "failed", "files outside the cell"
            return row
    if build.artifact:
        try:
            row.manifest = Manifest.read(cell_dir / build.artifact)
            row.manifest_sha = sha256_file(cell_dir / build.artifact / "manifest.json")
        except UserError as exc:
            bad.append(one_line(exc))
    if build.status == "done" and build.results:
        try:
            row.results = Results.read(cell_dir / build.results)
        except UserError as exc:
            bad.append(one_line(exc))
            row.status, row.note = "failed", "results unreadable"
    return row
