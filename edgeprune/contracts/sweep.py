"""The sweep's files: its configuration (TOML, written by the user), the record of each cell
(``cells/<key>/cell.json``) and the index of a results directory (``sweep.json``).

A cell is one pruning configuration (method, its options, sparsity) of one workload, model and
task set, with a compile and a bench per target and backend. Its key is a hash of exactly those
settings, so a re-run finds the cells it has done whatever order the grid is written in.

Usage::

    config = SweepConfig.from_toml(Path("sweep.toml"))
    cell = CellRecord.read(Path("results/cells/3f2a.../cell.json"))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final, Literal

import tomllib
from pydantic import Field, ValidationError, field_validator

from edgeprune.contracts.base import Contract, field_error, read_document
from edgeprune.errors import UserError, one_line

SWEEP_FORMAT: Final = "edgeprune.sweep/1"
CELL_FORMAT: Final = "edgeprune.sweep-cell/1"


class FinetuneBudget(Contract):
    steps: int = Field(default=0, ge=0, le=1_000_000)
    lr: float = Field(default=1e-3, gt=0, le=10)
    batch_size: int = Field(default=16, ge=1, le=65536)


class BenchSettings(Contract):
    seconds: float = Field(default=2.0, gt=0, le=3600)
    threads: int | None = Field(default=None, ge=1)


class SweepConfig(Contract):
    """What ``sweep.toml`` holds (every key but ``workload`` and ``methods`` has a default)::

        workload = "digits"             # built-in name, FILE.py:ATTR or MODULE:ATTR
        model = "digits-cnn"            # default: the workload's first
        tasks = ["digit", "ge5"]        # default: every task
        sparsities = [0.5, 0.7, 0.9]
        granularities = ["element"]     # for the methods that take --granularity
        targets = ["host"]
        backends = ["onnxruntime"]
        input_size = "28x28"            # default: the workload's
        [finetune]   steps = 100, lr = 1e-3, batch_size = 16
        [bench]      seconds = 2.0, threads = 2
        [methods.magnitude]  scope = "global"
        [methods.snip]
    """

    workload: str = Field(min_length=1)
    model: str | None = None
    tasks: list[str] | None = Field(default=None, min_length=1)
    methods: dict[str, dict[str, Any]] = Field(min_length=1)
    sparsities: list[float] = Field(default_factory=lambda: [0.5, 0.7, 0.9], min_length=1)
    granularities: list[str] | None = Field(default=None, min_length=1)
    targets: list[str] = Field(default_factory=lambda: ["host"], min_length=1)
    backends: list[str] = Field(default_factory=lambda: ["onnxruntime"], min_length=1)
    input_size: str | None = None
    finetune: FinetuneBudget = Field(default_factory=FinetuneBudget)
    bench: BenchSettings = Field(default_factory=BenchSettings)

    @classmethod
    def from_toml(cls, path: Path) -> SweepConfig:
        """Read and validate a config file; an unknown key is named with the known ones."""
        return cls.from_doc(load_toml(path), str(path))

    @classmethod
    def from_doc(cls, doc: dict[str, Any], where: str) -> SweepConfig:
        for section, model in (("", cls), ("finetune", FinetuneBudget), ("bench", BenchSettings)):
            table = doc if not section else doc.get(section)
            if not isinstance(table, dict):
                continue
            unknown = sorted(str(k) for k in table if k not in model.model_fields)
            if unknown:
                where_key = f"{section}.{unknown[0]}" if section else unknown[0]
                raise UserError(f"{where}: unknown key {one_line(where_key, 60)}; known: "
                                f"{', '.join(model.model_fields)}")  # fmt: skip
        try:
            return cls.model_validate(doc)
        except ValidationError as exc:
            raise UserError(f"{where}: {field_error(exc)}") from None


def load_toml(path: Path) -> dict[str, Any]:
    """A config file's TOML document, or one line saying why it is not one."""
    if not path.is_file():
        raise UserError(f"sweep config not found: {path}")
    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    except (tomllib.TOMLDecodeError, RecursionError, ValueError) as exc:
        raise UserError(f"{path}: not valid TOML ({one_line(exc)})") from None


def _inside(path: str | None) -> str | None:
    """A file name relative to the cell's directory, never climbing out of it."""
    if path is not None and (not path or path.startswith("/") or "\\" in path or ".." in path.split("/")):
        raise ValueError(f"{path!r} is not a path inside the cell's directory")
    return path


class CellSettings(Contract):
    """What decides a cell's pruned model (its key is their hash)."""

    workload: str = Field(min_length=1)
    model: str | None
    tasks: list[str] | None
    method: str = Field(min_length=1, max_length=200)
    options: dict[str, Any]
    sparsity: float | None = Field(ge=0.0, le=1.0)
    finetune: dict[str, Any] | None


class BuildRecord(Contract):
    """One target and backend of a cell: its artifact and its bench (or why there is none), and
    the compile and bench settings it was made with (a change makes it run again)."""

    target: str
    backend: str
    status: Literal["done", "failed", "not benched"]
    input_size: str | None = None
    bench: BenchSettings = Field(default_factory=BenchSettings)
    artifact: str | None = None  # relative to the cell's directory
    results: str | None = None  # results.json, relative to the cell's directory
    error: str | None = None  # why it failed, or why it was not benched

    _artifact_inside = field_validator("artifact", "results")(_inside)


class CellRecord(Contract):
    """``cell.json``: one cell's settings, what happened, and where its files are."""

    format: Literal["edgeprune.sweep-cell/1"] = CELL_FORMAT
    key: str = Field(pattern=r"^[0-9a-f]{16}$")
    settings: CellSettings
    status: Literal["done", "failed"]
    error: str | None = None
    checkpoint: str | None = None  # relative to the cell's directory; None for the dense cell
    sparsity: float | None = None
    metrics: dict[str, dict[str, float | None]] = Field(default_factory=dict)
    delta_t: float | None = None
    delta_t_reason: str | None = None  # why delta_t is None
    builds: list[BuildRecord] = Field(default_factory=list)
    seconds: float = 0.0
    edgeprune_version: str

    @classmethod
    def read(cls, path: Path) -> CellRecord:
        return read_document(cls, path, CELL_FORMAT)


class SweepIndex(Contract):
    """``sweep.json``: the configuration a results directory was made with and its cells' keys."""

    format: Literal["edgeprune.sweep/1"] = SWEEP_FORMAT
    config: SweepConfig
    cells: list[str]
    edgeprune_version: str

    @classmethod
    def read(cls, path: Path) -> SweepIndex:
        return read_document(cls, path, SWEEP_FORMAT)
