"""The SMSP mask library (arXiv 2307.04365, Sec. 3.1): pruned results of earlier tasks on one
pre-trained model, each stored with a score per prunable structure (filter, MLP node,
attention head).

An entry is made by pruning one task alone: first-order Taylor scores per structure,
|sum over the structure of w * dL/dw| (Molchanov et al., CVPR 2019), summed over calibration
batches; one round of structured pruning; masked fine-tuning; and the Taylor scores of the
fine-tuned pruned model (zero for pruned structures) are what the entry keeps. One JSON file
per entry: ``<library>/<workload>.<model>.<task>.json``.

Usage::

    entry = build_entry("digit-pool", "pool-cnn", "parity", sparsity=0.8, steps=300)
    save_entry(entry, "lib/")
    entries = load_library("lib/")
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeprune.contracts.base import NotJson, load_json
from edgeprune.errors import UserError, named, show
from edgeprune.evaluate import evaluate
from edgeprune.fsio import write_text_atomic
from edgeprune.masks import MaskSet
from edgeprune.prune.context import PruneContext
from edgeprune.prune.importance import taylor_terms
from edgeprune.prune.pipeline import finetune, prune_context
from edgeprune.prune.source import load_and_extract
from edgeprune.prune.structures import Structure, find_structures, select_structures, structure_masks
from edgeprune.train.finetune import FinetuneConfig
from edgeprune.workload.registry import resolve_workload

FORMAT = "edgeprune.library-entry/1"


@dataclasses.dataclass
class LibraryEntry:
    task: str
    workload: str
    model: str
    source_hash: str
    sparsity: float
    scores: dict[str, float]
    metrics: dict[str, Any]

    @property
    def filename(self) -> str:
        return f"{self.workload}.{self.model}.{self.task}.json"


def structure_taylor(ctx: PruneContext, structures: list[Structure]) -> dict[str, float]:
    """Per structure, |sum of its weights' w * dL/dw| over 16 calibration batches of 32."""
    terms = taylor_terms(ctx)
    return {s.id: abs(float(sum(terms[p].narrow(d, a, b - a).sum() for p, d, a, b in s.parts))) for s in structures}


def build_entry(workload_name: str, model_name: str | None, task: str, sparsity: float, steps: int = 300,
                lr: float = 1e-3, progress: Callable[[int, float], None] | None = None) -> LibraryEntry:  # fmt: skip
    """Prune ``task`` alone (structured, Taylor scores), fine-tune, and score the result: the
    pipeline's loading, context, fine-tuning and evaluation steps around a Taylor criterion."""
    if not 0.0 <= sparsity < 1.0:
        raise UserError(f"sparsity {sparsity} is outside [0, 1)")
    workload = resolve_workload(workload_name)
    loaded = load_and_extract(workload, [task], model_name, None)
    ctx = prune_context(workload, loaded)
    structures = find_structures(loaded.source, ctx.params)
    keep = select_structures(structure_taylor(ctx, structures), structures, ctx.params, sparsity)
    masks = MaskSet(structure_masks(ctx.params, structures, keep))
    masks.apply(ctx.model)
    finetune(ctx, masks, FinetuneConfig(steps=steps, lr=lr, batch_size=64), progress)
    final = {k: (v if k in keep else 0.0) for k, v in structure_taylor(ctx, structures).items()}
    return LibraryEntry(task, workload.name, model_name or workload.default_model, ctx.source_hash, masks.sparsity(),
                        final, evaluate(ctx.model, workload, ctx.tasks))  # fmt: skip


def save_entry(entry: LibraryEntry, library: str | Path) -> Path:
    path = Path(library) / entry.filename
    write_text_atomic(path, json.dumps({"format": FORMAT, **dataclasses.asdict(entry)}, indent=1) + "\n")
    return path


def load_library(library: str | Path) -> list[LibraryEntry]:
    """Every entry of a library directory; a malformed entry is a :class:`UserError` that names
    the file and the field."""
    root = Path(library)
    if not root.is_dir():
        raise UserError(f"mask library not found: {root} (create it with 'edgeprune mask-library add')")
    return [read_entry(path) for path in sorted(root.glob("*.json"))]


ENTRY_FIELDS = {"format": str, "task": str, "workload": str, "model": str, "source_hash": str, "sparsity": float,
                "scores": dict, "metrics": dict}  # fmt: skip


def read_entry(path: Path) -> LibraryEntry:
    """One library entry, validated: every field present with its type, the sparsity in [0, 1]
    and every structure's score a finite number of at least 0."""

    def bad(what: str) -> UserError:
        return UserError(f"library entry {path} is malformed ({what})")

    try:
        doc = load_json(path.read_bytes())
    except OSError as exc:
        raise bad(f"cannot be read: {exc.strerror or exc}") from None
    except NotJson as exc:
        raise bad(str(exc)) from None
    if not isinstance(doc, dict):
        raise bad("not a JSON object")
    if doc.get("format") != FORMAT:
        raise bad(f"not a library entry: format {show(doc.get('format'))}, this edgeprune reads {FORMAT}")
    unknown = sorted(set(doc) - set(ENTRY_FIELDS))
    if unknown:
        raise bad(f"field {named(unknown[0])} is not known")
    for field, kind in ENTRY_FIELDS.items():
        if field not in doc:
            raise bad(f"field {field} is missing")
        value = doc[field]
        ok = _number(value) if kind is float else isinstance(value, kind)
        if not ok or (kind is str and not value.isprintable()):
            raise bad(f"field {field} must be {_KINDS[kind]}, not {show(value)}")
    try:
        sparsity = float(doc["sparsity"])
    except OverflowError:
        sparsity = math.inf
    if not 0.0 <= sparsity <= 1.0:
        raise bad(f"field sparsity {show(doc['sparsity'])} is outside [0, 1]")
    scores: dict[str, float] = {}
    for name, score in doc["scores"].items():
        if not _number(score) or not _finite(score) or score < 0:
            raise bad(f"field scores.{named(name)} must be a finite number of at least 0, not {show(score)}")
        scores[name] = float(score)
    for task, values in doc["metrics"].items():
        if not isinstance(values, dict) or not all(_number(v) for v in values.values()):
            raise bad(f"field metrics.{named(task)} must be an object of numbers, not {show(values)}")
    return LibraryEntry(doc["task"], doc["workload"], doc["model"], doc["source_hash"], sparsity, scores,
                        doc["metrics"])  # fmt: skip


_KINDS = {str: "printable text", float: "a number", dict: "an object"}


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False
