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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeprune.errors import UserError
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
    """Every entry of a library directory; a malformed entry is a :class:`UserError`."""
    root = Path(library)
    if not root.is_dir():
        raise UserError(f"mask library not found: {root} (create it with 'edgeprune mask-library add')")
    entries = []
    for path in sorted(root.glob("*.json")):
        try:
            doc = json.loads(path.read_text())
            if doc.pop("format", None) != FORMAT:
                raise ValueError("not a library entry")
            entries.append(LibraryEntry(**doc))
        except (ValueError, TypeError) as exc:
            raise UserError(f"library entry {path} is malformed ({exc})") from None
    return entries
