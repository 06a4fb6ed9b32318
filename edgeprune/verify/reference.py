"""``edgeprune verify``, the host side: the reference outputs are the checkpoint's own graph (the
pruned model exported by prune and checked there against PyTorch), run by stock ONNX Runtime on
the inputs the checkpoint carries, brought to the artifact's resolution. Nothing the checkpoint
names is imported."""

from __future__ import annotations

from pathlib import Path

from edgeprune.checkpoint import load_checkpoint
from edgeprune.contracts.manifest import Manifest
from edgeprune.errors import UserError
from edgeprune.fsio import sha256_file
from edgeprune.graph.carried import at_size, run_graph
from edgeprune.graph.inputs import resized
from edgeprune.verify.board import Reference


def checkpoint_reference(manifest: Manifest, checkpoint: Path | None, samples: int) -> Reference:
    """``checkpoint`` defaults to the path the manifest recorded; it must be the same file."""
    path = checkpoint or Path(manifest.checkpoint.path or manifest.checkpoint.file)
    if not path.is_file():
        raise UserError(f"checkpoint {path} (the artifact's source) not found; pass --checkpoint")
    if sha256_file(path) != manifest.checkpoint.sha256:
        raise UserError(f"{path} is not the checkpoint this artifact was compiled from (sha256 differs)")
    ckpt = load_checkpoint(path)
    meta = ckpt.meta
    if samples > len(ckpt.inputs):
        raise UserError(f"--samples {samples}: the checkpoint carries {len(ckpt.inputs)} inputs")
    graph, info = ckpt.carried_graph()
    shape = manifest.inputs[0].shape
    size = (int(shape[2]), int(shape[3])) if len(shape) == 4 else None
    x = resized(ckpt.inputs[:samples], size).numpy() if size else ckpt.inputs[:samples].numpy()
    outs = run_graph(at_size(graph, info, size, meta.model), x)
    return Reference(x, dict(zip(meta.tasks, outs, strict=True)), "the checkpoint's graph in stock ONNX Runtime")
