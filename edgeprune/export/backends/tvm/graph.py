"""The ONNX graph the TVM backend imports into Relax: the dense graph with the plan applied where
standard operators can express it. A shrunk layer becomes its smaller standard layers (as in the
ONNX Runtime backend); a sparse layer keeps its Conv node (with its bias) but loses the
activation the kernel fuses, so that after import it is one ``conv2d`` (+ bias ``add``) that
:mod:`edgeprune.export.backends.tvm.sparse` replaces with a call of our kernel."""

from __future__ import annotations

import onnx

from edgeprune.export.backends.onnxruntime.rewrite import rewrite
from edgeprune.export.plan import PlannedLayer
from edgeprune.formats.compressed import Compressed
from edgeprune.formats.shrunk import Shrunk


def for_relax(dense: onnx.ModelProto, layers: list[PlannedLayer]) -> onnx.ModelProto:
    """A copy of ``dense``: shrunk layers rewritten, sparse layers' fused activations removed
    (the Conv writes the activation's output tensor; the kernel applies the activation)."""
    out = rewrite(dense, [(p.site, p.weight) for p in layers if isinstance(p.weight, Shrunk)])
    # Tensor names are unique in ONNX and survive the rewrite: find the nodes by their outputs.
    rename: dict[str, str] = {}
    fused: set[str] = set()
    for p in layers:
        if isinstance(p.weight, Compressed) and p.site.fused:
            rename[p.site.node.output[0]] = p.site.output
            fused.update(dense.graph.node[k].output[0] for k in p.site.fused)
    kept = [n for n in out.graph.node if not (n.output and n.output[0] in fused)]
    for n in kept:
        if n.op_type == "Conv" and n.output[0] in rename:
            n.output[0] = rename[n.output[0]]
    del out.graph.node[:]
    out.graph.node.extend(kept)
    return out
