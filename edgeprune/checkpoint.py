"""The pruned checkpoint (``.ept``): one safetensors file holding the extracted model's weights
(``w/<name>``), the keep-masks (``m/<name>``, uint8) and JSON metadata: the workload and model it
came from, the tasks, the method and its settings, the source model's hash and the edgeprune
version. Loading parses tensors and JSON only; nothing in the file is executed.

Usage::

    save_checkpoint("out.ept", model, masks, meta)
    ckpt = load_checkpoint("out.ept")          # CheckpointFile(state, masks, meta)
    model = rebuild_model(ckpt)                # extracted model with the pruned weights
    model = masked_model(ckpt)                 # the same, pruned weights zeroed (what compile exports)
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from edgeprune import __version__
from edgeprune.errors import UserError
from edgeprune.fsio import atomic_path
from edgeprune.masks import Granularity, MaskSet
from edgeprune.model.extract import extract_tasks
from edgeprune.workload.registry import resolve_workload
from edgeprune.workload.weights import load_state

FORMAT = "edgeprune.checkpoint/1"
_REQUIRED = ("format", "edgeprune_version", "workload", "model", "tasks", "method", "settings", "source_hash",
             "granularity")  # fmt: skip


@dataclasses.dataclass
class CheckpointFile:
    state: dict[str, torch.Tensor]
    masks: MaskSet
    meta: dict[str, Any]


def save_checkpoint(path: str | Path, model: nn.Module, masks: MaskSet, meta: dict[str, Any]) -> None:
    """Write weights, masks and metadata atomically."""
    tensors = {f"w/{k}": v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tensors.update({f"m/{k}": m.to(torch.uint8).contiguous() for k, m in masks.masks.items()})
    full = {
        "format": FORMAT,
        "edgeprune_version": __version__,
        **meta,
        "granularity": {k: str(g) for k, g in masks.granularity.items()},
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"edgeprune": json.dumps(full)})


def load_checkpoint(path: str | Path) -> CheckpointFile:
    """Read and validate a checkpoint; anything wrong with it is a :class:`UserError`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as fh:
            raw = (fh.metadata() or {}).get("edgeprune")
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 - safe_open has no __iter__
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise UserError(f"{path} is not a valid edgeprune checkpoint (corrupt or truncated: {exc})") from None
    if raw is None:
        raise UserError(f"{path} is a safetensors file but not an edgeprune checkpoint (no metadata)")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError:
        raise UserError(f"{path}: checkpoint metadata is not valid JSON") from None
    missing = [k for k in _REQUIRED if k not in meta]
    if meta.get("format") != FORMAT or missing:
        raise UserError(f"{path}: unsupported checkpoint format {meta.get('format')!r} (missing {missing})")
    state = {k[2:]: v for k, v in tensors.items() if k.startswith("w/")}
    masks = {k[2:]: v.bool() for k, v in tensors.items() if k.startswith("m/")}
    for name, mask in masks.items():
        if name not in state or state[name].shape != mask.shape:
            raise UserError(f"{path}: mask {name} has no weight of its shape")
    gran = {k: Granularity.parse(v) for k, v in meta["granularity"].items()}
    return CheckpointFile(state, MaskSet(masks, gran), meta)


def rebuild_model(ckpt: CheckpointFile) -> nn.Module:
    """Rebuild the extracted architecture from the workload named in the metadata and load the
    checkpoint's weights into it (eval mode)."""
    workload = resolve_workload(ckpt.meta["workload"])
    name = ckpt.meta["model"]
    if name not in workload.models:
        raise UserError(f"checkpoint model '{name}' is not in workload '{workload.name}'")
    model = extract_tasks(workload.models[name].build().float(), ckpt.meta["tasks"])
    load_state(model, ckpt.state, "checkpoint")
    return model.eval()


def masked_model(ckpt: CheckpointFile) -> nn.Module:
    """:func:`rebuild_model` with every pruned weight zeroed: the model a compiled artifact
    must reproduce."""
    model = rebuild_model(ckpt)
    with torch.no_grad():
        ckpt.masks.apply(model)
    return model
