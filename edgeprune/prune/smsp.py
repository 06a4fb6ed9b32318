"""SMSP: scalable mask selection pruning, one-shot pruning for fast-adapting pre-trained models
(arXiv 2307.04365).

1. A mask library (Sec. 3.1, :mod:`edgeprune.prune.smsp_library`) holds pruned results of earlier tasks on
   the same pre-trained model with a score per filter / node / attention head.
2. Similar tasks (Sec. 3.2): LEEP (Nguyen et al., ICML 2020) between the new task's data and
   each library task, from the pre-trained model's outputs for that library task; the top-k
   most similar are chosen.
3. Score mask (Sec. 3.3): the chosen tasks' structure scores, each entry normalised to sum to
   one, are summed.
4. One round of structured pruning at the requested ratio (filters and nodes for CNNs; attention
   heads and MLP nodes for transformers); structures no library task scores (the new task's own
   head) stay. Then a few fine-tuning iterations (Sec. 4.1: 100 by default).

Usage::

    masks = SMSPPruner(mask_library="lib/", top_k=2).prune(ctx, 0.8)   # masks.info["similar"]
"""

from __future__ import annotations

import torch

from edgeprune.errors import UserError
from edgeprune.masks import Granularity, MaskSet
from edgeprune.prune.context import PruneContext
from edgeprune.prune.leep import leep
from edgeprune.prune.smsp_library import load_library
from edgeprune.prune.structures import find_structures, select_structures, structure_masks


def aggregate(score_sets: list[dict[str, float]]) -> dict[str, float]:
    """Sum of score sets, each normalised to sum to one."""
    out: dict[str, float] = {}
    for scores in score_sets:
        total = sum(scores.values()) or 1.0
        for k, v in scores.items():
            out[k] = out.get(k, 0.0) + v / total
    return out


class SMSPPruner:
    """LEEP-ranked library tasks, aggregated structure scores, one round of structured pruning."""

    def __init__(self, mask_library: str | None = None, top_k: int = 2) -> None:
        if not mask_library:
            raise UserError("method smsp needs --mask-library DIR (build one with 'edgeprune mask-library add')")
        self.mask_library, self.top_k = mask_library, top_k

    def similarities(self, ctx: PruneContext, candidates: list[str]) -> dict[str, float]:
        """LEEP of each library task's pre-trained outputs for the new task's labels."""
        if ctx.source_model is None:
            raise UserError("smsp needs the pre-trained model to compute LEEP")
        x, y = ctx.workload.split("calibration")
        (task,) = ctx.tasks
        with torch.no_grad():
            out = ctx.source_model.eval()(x)
        missing = [t for t in candidates if t not in out]
        if missing:
            raise UserError(f"library tasks {missing} are not outputs of the pre-trained model")
        return {t: leep(torch.softmax(out[t], dim=1), y[task]) for t in candidates}

    def prune(self, ctx: PruneContext, sparsity: float) -> MaskSet:
        if len(ctx.tasks) != 1:
            raise UserError(f"smsp prunes one new task at a time; got {len(ctx.tasks)}: {', '.join(ctx.tasks)}")
        (task,) = ctx.tasks
        entries = [e for e in load_library(self.mask_library) if e.task != task]
        if not entries:
            raise UserError(f"the library {self.mask_library} has no entry for another task than '{task}'")
        foreign = [e for e in entries if e.source_hash != ctx.source_hash]
        if foreign:
            raise UserError(
                f"library entry '{foreign[0].task}' ({foreign[0].workload}/{foreign[0].model}) was pruned from "
                f"another pre-trained model (hash {foreign[0].source_hash[:12]}, this model {ctx.source_hash[:12]})"
            )
        sims = self.similarities(ctx, [e.task for e in entries])
        chosen = sorted(entries, key=lambda e: -sims[e.task])[: self.top_k]
        scores = aggregate([e.scores for e in chosen])
        source = ctx.source_model
        if source is None:  # similarities() has refused it already
            raise UserError("smsp needs the pre-trained model to find its structures")
        structures = find_structures(source, ctx.params)
        keep = select_structures(scores, structures, ctx.params, sparsity)
        info = {"similarity_leep": sims, "chosen": [e.task for e in chosen], "structures": len(structures),
                "kept_structures": len(keep)}  # fmt: skip
        return MaskSet(structure_masks(ctx.params, structures, keep), default=Granularity("channel"), info=info)
