"""What every ``edgeprune`` command shares: the typer app, the consoles (human output on
stdout, progress on stderr), the common options and small helpers."""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from edgeprune import __version__
from edgeprune.errors import UserError
from edgeprune.resolution import parse_resolution

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
DENSE_WORKLOAD = "scenes"  # what inspect and evaluate use for a dense model when no --workload is given
CheckpointOrWorkloadOpt = Annotated[str | None, typer.Option("--workload", "-w", help="Built-in name (scenes, digits), FILE.py:ATTR or MODULE:ATTR (default: scenes; with a checkpoint: its built-in workload, and any other must be given here, since edgeprune never imports code a checkpoint names).")]  # noqa: E501
ModelOpt = Annotated[str | None, typer.Option(help="Model of the workload (default: its first, e.g. mtl-resnet).")]
WeightsOpt = Annotated[Path | None, typer.Option(help="Weights (safetensors) to use instead of the shipped ones.")]
TasksOpt = Annotated[str | None, typer.Option("--tasks", "-t", help="Comma-separated tasks to keep (default: all).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON summary on stdout.")]
ThreadsOpt = Annotated[int | None, typer.Option(help="CPU threads for PyTorch (default: all cores; at most 4 per core).")]  # noqa: E501
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace the output if it exists.")]

THREADS_PER_CORE = 4  # --threads above cores x this is refused: more only thrashes (10,000 once took minutes to die)
MAX_SECONDS = 3600.0  # a timing budget above an hour is a typo, not a measurement
MAX_SAMPLES = 1000


def _version(value: bool) -> None:
    if value:
        out.print(f"edgeprune {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,  # noqa: E501
) -> None:
    """Prune multi-task PyTorch models and make the sparsity measurably faster on edge devices."""


def max_threads() -> int:
    """The most threads a command accepts: the machine's cores times :data:`THREADS_PER_CORE`."""
    return (os.cpu_count() or 1) * THREADS_PER_CORE


def check_threads(n: int | None, option: str = "--threads") -> None:
    """Refuse a thread count below 1 or above :func:`max_threads`, naming the limit."""
    if n is None:
        return
    if n < 1:
        raise UserError(f"{option} must be at least 1, got {n}")
    limit = max_threads()
    if n > limit:
        raise UserError(f"{option} {n} is more than this machine can use: at most {limit} "
                        f"({THREADS_PER_CORE} per core, {os.cpu_count() or 1} cores)")  # fmt: skip


def _threads(n: int | None) -> None:
    """Check ``--threads`` and set PyTorch's thread count (imports torch: call it after the checks
    that need no torch)."""
    check_threads(n)
    if n is not None:
        import torch

        torch.set_num_threads(n)


def check_finite(value: float | None, option: str) -> None:
    """Refuse NaN and infinity for a float option (comparisons with NaN are all false, so a range
    check alone lets it through)."""
    if value is not None and not math.isfinite(value):
        raise UserError(f"{option} must be a finite number, got {value}")


def check_seconds(value: float, option: str = "--seconds") -> None:
    """A timing budget: finite, positive, at most :data:`MAX_SECONDS`."""
    if not (math.isfinite(value) and 0 < value <= MAX_SECONDS):
        raise UserError(f"{option} must be positive and at most {MAX_SECONDS:g} (an hour), got {value}")


def check_samples(value: int, option: str = "--samples") -> None:
    if not 1 <= value <= MAX_SAMPLES:
        raise UserError(f"{option} must be between 1 and {MAX_SAMPLES}, got {value}")


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Writing ``path``: an OS error is one line naming it. ``fsio.check_output`` has checked the
    output before the work; this catches what no check can foresee (a full disk, a file system that
    refuses new files whatever the permission bits say)."""
    try:
        yield
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


def json_safe(doc: Any) -> Any:  # noqa: ANN401
    """``doc`` with every non-finite float (NaN, infinity) replaced by ``None``: standard JSON has
    no NaN, and ``null`` is its "no number" (a metric a workload could not compute)."""
    if isinstance(doc, float) and not math.isfinite(doc):
        return None
    if isinstance(doc, dict):
        return {k: json_safe(v) for k, v in doc.items()}
    if isinstance(doc, list | tuple):
        return [json_safe(v) for v in doc]
    return doc


def json_text(doc: dict[str, Any]) -> str:
    """Standard JSON (see :func:`json_safe`), indented, with a final newline."""
    return json.dumps(json_safe(doc), indent=2, default=str, allow_nan=False) + "\n"


def _print_json(doc: dict[str, Any]) -> None:
    sys.stdout.write(json_text(doc))


def _size(text: str | None) -> tuple[int, int] | None:
    """Parse a deploy resolution ``HxW``."""
    return None if text is None else parse_resolution(text)
