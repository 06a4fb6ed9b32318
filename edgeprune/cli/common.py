"""What every ``edgeprune`` command shares: the typer app, the consoles (human output on
stdout, progress on stderr), the common options and small helpers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

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
DENSE_WORKLOAD = "scenes"  # what inspect and evaluate use for a dense model when no --workload is given
CheckpointOrWorkloadOpt = Annotated[str | None, typer.Option("--workload", "-w", help="Built-in name (scenes, digits), FILE.py:ATTR or MODULE:ATTR (default: scenes; with a checkpoint: the one it records).")]  # noqa: E501
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


def _print_json(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")


def _size(text: str | None) -> tuple[int, int] | None:
    """Parse a deploy resolution ``HxW``."""
    if text is None:
        return None
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise UserError(f"--input-size '{text}' is not HxW (e.g. 224x224)")
    return int(parts[0]), int(parts[1])
