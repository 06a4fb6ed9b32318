"""Where the shipped reference weights live, and how a state dict is saved and loaded safely."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from edgeprune.errors import UserError
from edgeprune.fsio import atomic_path

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "models" / "weights"


def shipped_weights(name: str) -> Path:
    """Path of a reference model's shipped half-precision weights."""
    return WEIGHTS_DIR / f"{name}.safetensors"


def save_state(model: nn.Module, path: str | Path, half: bool = True) -> None:
    """Save ``model``'s state dict as safetensors (floating tensors in fp16 if ``half``)."""
    state = {}
    for k, v in model.state_dict().items():
        v = v.detach().contiguous().cpu()
        state[k] = v.half() if half and v.is_floating_point() else v
    with atomic_path(path) as tmp:
        save_file(state, str(tmp))


def read_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a safetensors state dict; a missing or corrupt file is a :class:`UserError`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights file not found: {path}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"weights file {path} is not a valid safetensors file ({exc})") from None


def load_state(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> nn.Module:
    """Load ``state`` into ``model`` (cast to the model's dtypes); mismatches are user errors."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise UserError(
            f"{source} does not fit the model: {len(missing)} missing tensors "
            f"(e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]})"
        )
    for k, v in state.items():
        if own[k].shape != v.shape:
            raise UserError(f"{source}: tensor {k} has shape {tuple(v.shape)}, model expects {tuple(own[k].shape)}")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
    return model


def state_hash(state: dict[str, torch.Tensor]) -> str:
    """sha256 of a state dict's names, shapes, dtypes and bytes, in name order."""
    h = hashlib.sha256()
    for k in sorted(state):
        v = state[k].detach().contiguous().cpu()
        h.update(f"{k}|{tuple(v.shape)}|{v.dtype}|".encode())
        h.update(v.reshape(-1).view(torch.uint8).numpy().tobytes() if v.numel() else b"")
    return h.hexdigest()
