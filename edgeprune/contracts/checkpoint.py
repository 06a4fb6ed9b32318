"""The pruned checkpoint's metadata: what was pruned, from what, how, and with which result.

It travels inside the ``.ept`` file (safetensors metadata, key ``edgeprune``); the weights and
masks beside it are tensors. ``workload`` is a reference that survives a move: a built-in name,
``MODULE:ATTR``, or ``/absolute/path/file.py:ATTR`` (a relative path is made absolute when the
checkpoint is written).
"""

from __future__ import annotations

import json
from typing import Any, Final, Literal

from pydantic import Field

from edgeprune.contracts.base import Contract, decode, parse

CHECKPOINT_FORMAT: Final = "edgeprune.checkpoint/1"

Metrics = dict[str, dict[str, float]]  # task -> metric -> value


class PruneMetrics(Contract):
    dense: Metrics | None = None  # None when the dense model was not evaluated
    pruned: Metrics | None = None
    delta_t: float | None = None


class CheckpointMeta(Contract):
    """Everything a checkpoint says about itself besides its tensors.

    Usage::

        meta = CheckpointMeta(edgeprune_version=__version__, workload="digits", model="digits-cnn",
                              tasks=["digit"], method="magnitude", settings={...}, source_hash=h)
        meta = CheckpointMeta.from_json(raw, "pruned.ept")    # a bad field is one UserError line
    """

    format: Literal["edgeprune.checkpoint/1"] = CHECKPOINT_FORMAT
    edgeprune_version: str
    workload: str
    model: str
    tasks: list[str] = Field(min_length=1)
    method: str
    settings: dict[str, Any]
    source_hash: str
    granularity: dict[str, str] = Field(default_factory=dict)  # weight -> element | channel | block:RxC | N:M
    weights: str | None = None  # the pre-trained weights file, when not the shipped ones
    sparsity: float | None = None
    method_info: dict[str, Any] = Field(default_factory=dict)
    metrics: PruneMetrics = Field(default_factory=PruneMetrics)

    def to_metadata(self) -> str:
        """Compact JSON for the safetensors header (a NaN metric stays NaN, as ``json`` writes it)."""
        return json.dumps(self.model_dump())

    @classmethod
    def from_json(cls, raw: bytes | str, where: str) -> CheckpointMeta:
        return parse(cls, decode(raw, where), f"{where}: checkpoint metadata", CHECKPOINT_FORMAT)
