"""The pruned checkpoint (``.ept``): one safetensors file holding the extracted model's weights
(``w/<name>``), the keep-masks (``m/<name>``, uint8) and JSON metadata (a
:class:`~edgeprune.contracts.checkpoint.CheckpointMeta`): the workload and model it came from,
the tasks, the method and its settings, the source model's hash and the edgeprune version.
Loading parses tensors and JSON only; nothing in the file is executed.

Usage::

    save_checkpoint("out.ept", model, masks, meta)   # meta: a CheckpointMeta
    ckpt = load_checkpoint("out.ept")                # CheckpointFile(state, masks, meta)
    model = rebuild_model(ckpt)                      # extracted model with the pruned weights
    model = masked_model(ckpt)                       # pruned weights zeroed (what compile exports)
    model = masked_model(ckpt, checkpoint_workload(ckpt.meta.workload, "moved/wl.py:WL"))
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from edgeprune.contracts.checkpoint import CheckpointMeta
from edgeprune.errors import UserError
from edgeprune.fsio import atomic_path
from edgeprune.masks import Granularity, MaskSet
from edgeprune.taskgraph.extract import extract_tasks
from edgeprune.workload.base import Workload
from edgeprune.workload.registry import checkpoint_workload
from edgeprune.workload.weights import load_state


@dataclasses.dataclass
class CheckpointFile:
    state: dict[str, torch.Tensor]
    masks: MaskSet
    meta: CheckpointMeta


def save_checkpoint(path: str | Path, model: nn.Module, masks: MaskSet, meta: CheckpointMeta) -> None:
    """Write weights, masks and metadata atomically; the metadata's granularity is the masks'."""
    tensors = {f"w/{k}": v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tensors.update({f"m/{k}": m.to(torch.uint8).contiguous() for k, m in masks.masks.items()})
    full = meta.model_copy(update={"granularity": {k: str(g) for k, g in masks.granularity.items()}})
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"edgeprune": full.to_metadata()})


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
    meta = CheckpointMeta.from_json(raw, str(path))
    state = {k[2:]: v for k, v in tensors.items() if k.startswith("w/")}
    masks = {k[2:]: v.bool() for k, v in tensors.items() if k.startswith("m/")}
    for name, mask in masks.items():
        if name not in state or state[name].shape != mask.shape:
            raise UserError(f"{path}: mask {name} has no weight of its shape")
    gran = {}
    for name, text in meta.granularity.items():
        try:
            gran[name] = Granularity.parse(text)
        except UserError as exc:
            raise UserError(f"{path}: checkpoint metadata: field granularity.{name}: {exc}") from None
    return CheckpointFile(state, MaskSet(masks, gran), meta)


def rebuild_model(ckpt: CheckpointFile, workload: Workload | None = None) -> nn.Module:
    """Rebuild the extracted architecture from ``workload`` (default: the one the metadata
    records) and load the checkpoint's weights into it (eval mode)."""
    workload = workload if workload is not None else checkpoint_workload(ckpt.meta.workload)
    name = ckpt.meta.model
    if name not in workload.models:
        raise UserError(f"checkpoint model '{name}' is not in workload '{workload.name}'")
    model = extract_tasks(workload.models[name].build().float(), ckpt.meta.tasks)
    load_state(model, ckpt.state, "checkpoint")
    return model.eval()


def masked_model(ckpt: CheckpointFile, workload: Workload | None = None) -> nn.Module:
    """:func:`rebuild_model` with every pruned weight zeroed: the model a compiled artifact
    must reproduce."""
    model = rebuild_model(ckpt, workload)
    with torch.no_grad():
        ckpt.masks.apply(model)
    return model
