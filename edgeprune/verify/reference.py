"""``edgeprune verify``, the host side: the reference outputs of the masked PyTorch model of the
artifact's checkpoint, on the workload's own inputs at the artifact's resolution."""

from __future__ import annotations

from pathlib import Path

import torch

from edgeprune.checkpoint import load_checkpoint, masked_model
from edgeprune.contracts.manifest import Manifest
from edgeprune.errors import UserError
from edgeprune.fsio import sha256_file
from edgeprune.verify.board import Reference
from edgeprune.workload.registry import checkpoint_workload


def torch_reference(
    manifest: Manifest, checkpoint: Path | None, samples: int, workload: str | None = None
) -> Reference:
    """``checkpoint`` defaults to the path the manifest recorded; it must be the same file."""
    path = checkpoint or Path(manifest.checkpoint.path or manifest.checkpoint.file)
    if not path.is_file():
        raise UserError(f"checkpoint {path} (the artifact's source) not found; pass --checkpoint")
    if sha256_file(path) != manifest.checkpoint.sha256:
        raise UserError(f"{path} is not the checkpoint this artifact was compiled from (sha256 differs)")
    ckpt = load_checkpoint(path)
    wl = checkpoint_workload(ckpt.meta.workload, workload)
    h, w = (int(d) for d in manifest.inputs[0].shape[2:4])
    x = wl.inputs_at(samples, (h, w)).numpy()
    with torch.no_grad():
        out = masked_model(ckpt, wl)(torch.from_numpy(x))
    return Reference(x, {t: out[t].numpy() for t in ckpt.meta.tasks}, "the masked PyTorch model of the checkpoint")
