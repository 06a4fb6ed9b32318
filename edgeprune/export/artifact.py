"""The artifact directory: ``model.onnx`` (sparse, runs in stock onnxruntime thanks to the
fallback functions), ``dense.onnx`` (the baseline bench times in the same run), the kernel
library built for the target and ``manifest.json``. Written into a temporary directory beside
the destination and renamed into place, so a failed compile leaves nothing behind."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgeprune.errors import UserError

MANIFEST = "manifest.json"
FORMAT = "edgeprune.artifact/1"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def staged_dir(dest: Path, force: bool) -> Iterator[Path]:
    """A fresh temporary directory that becomes ``dest`` on success."""
    if dest.exists() and not force:
        raise UserError(f"output directory {dest} exists; use --force to replace it")
    if dest.exists() and not dest.is_dir():
        raise UserError(f"output path {dest} exists and is not a directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        yield tmp
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            dest.rename(old)
            tmp.rename(dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def read_manifest(artifact: Path) -> dict[str, Any]:
    path = artifact / MANIFEST
    if not artifact.is_dir():
        raise UserError(f"artifact directory not found: {artifact}")
    if not path.is_file():
        raise UserError(f"{artifact} is not an edgeprune artifact (no {MANIFEST})")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    if doc.get("format") != FORMAT:
        raise UserError(f"{path}: unsupported artifact format {doc.get('format')!r}")
    for name in (doc["files"]["model"], doc["files"]["dense"]):
        if not (artifact / name).is_file():
            raise UserError(f"{artifact}: {name} is missing")
    return doc
