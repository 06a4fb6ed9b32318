"""The pruned checkpoint's metadata: what was pruned, from what, how, and with which result.

It travels inside the ``.ept`` file (safetensors metadata, key ``edgeprune``); the weights,
masks, the extracted model's ONNX graph and a few of the workload's inputs beside it are
tensors. ``workload`` names what the model was pruned with: a built-in name, ``MODULE:ATTR``, or
``/absolute/path/file.py:ATTR``. It is a hint for the user only: edgeprune resolves built-in
names from its own table and never imports a module or file a checkpoint names.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Final, Literal

from pydantic import Field

from edgeprune.contracts.base import Contract, decode, parse

CHECKPOINT_FORMAT: Final = "edgeprune.checkpoint/2"
OLDER_FORMATS: Final = {
    "edgeprune.checkpoint/1": "it carries no model graph, which compile and verify now read instead of the "
    "workload's code; prune again",
}

Metrics = dict[str, dict[str, float]]  # task -> metric -> value


class PruneMetrics(Contract):
    dense: Metrics | None = None  # None when the dense model was not evaluated
    pruned: Metrics | None = None
    delta_t: float | None = None


class GraphInfo(Contract):
    """The ONNX graph the checkpoint carries (tensor ``g/onnx``)."""

    sizes: Literal["any", "fixed"]  # any: checked at a second size; fixed: only at ``input``
    input: list[Annotated[int, Field(ge=1)]] = Field(min_length=1)  # one input's shape at export (C, H, W for images)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class CheckpointMeta(Contract):
    """Everything a checkpoint says about itself besides its tensors.

    Usage::

        meta = CheckpointMeta(edgeprune_version=__version__, workload="digits", model="digits-cnn",
                              tasks=["digit"], method="magnitude", settings={...}, source_hash=h)
        meta = CheckpointMeta.from_json(raw, "pruned.ept")    # a bad field is one UserError line
    """

    format: Literal["edgeprune.checkpoint/2"] = CHECKPOINT_FORMAT
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
    graph: GraphInfo | None = None  # None: the model could not be exported, for graph_error's reason
    graph_error: str | None = None

    def to_metadata(self) -> str:
        """Compact JSON for the safetensors header (a NaN metric stays NaN, as ``json`` writes it)."""
        return json.dumps(self.model_dump())

    @classmethod
    def from_json(cls, raw: bytes | str, where: str) -> CheckpointMeta:
        return parse(cls, decode(raw, where), f"{where}: checkpoint metadata", CHECKPOINT_FORMAT, OLDER_FORMATS)
