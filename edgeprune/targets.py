"""Targets: one TOML file per board in ``targets/`` (the single source of truth about a board).
This module reads them; nothing about a board is written in Python.

A target names its CPU, where its kernel library comes from, the calibration table of the
per-layer format chooser and its default thread count. ``EDGEPRUNE_TARGETS`` points at another
directory of target files.

Usage::

    t = load_target("host")
    t.calibration_path, t.threads
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import tomllib

from edgeprune.errors import UserError


def targets_dir() -> Path:
    return Path(os.environ.get("EDGEPRUNE_TARGETS") or Path(__file__).resolve().parent.parent / "targets")


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    description: str
    arch: str  # "native" = the machine running edgeprune
    threads: int
    library: str  # "host" = the build made by pip install
    calibration_path: Path
    path: Path


def known_targets() -> list[str]:
    return sorted(p.stem for p in targets_dir().glob("*.toml"))


def _field(doc: dict, path: Path, *keys: str, kind: type = str) -> object:
    node: object = doc
    for k in keys:
        if not isinstance(node, dict) or k not in node:
            raise UserError(f"{path}: missing field {'.'.join(keys)}")
        node = node[k]
    if not isinstance(node, kind) or isinstance(node, bool) and kind is int:
        raise UserError(f"{path}: field {'.'.join(keys)} must be {kind.__name__}, not {node!r}")
    return node


def load_target(name: str) -> Target:
    """The target called ``name``; an unknown name lists the known ones."""
    path = targets_dir() / f"{name}.toml"
    if not path.is_file():
        raise UserError(f"unknown target '{name}'; known targets: {', '.join(known_targets()) or 'none'}")
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None
    threads = int(_field(doc, path, "cpu", "threads", kind=int))
    if threads < 1:
        raise UserError(f"{path}: field cpu.threads must be at least 1")
    return Target(
        name=str(_field(doc, path, "name")),
        description=str(doc.get("description", "")),
        arch=str(_field(doc, path, "cpu", "arch")),
        threads=threads,
        library=str(_field(doc, path, "kernels", "library")),
        calibration_path=path.parent / str(_field(doc, path, "kernels", "calibration")),
        path=path,
    )
