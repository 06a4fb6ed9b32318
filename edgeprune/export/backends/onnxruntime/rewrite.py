"""The ONNX Runtime backend's graph rewrite: each chosen convolution of the dense graph becomes
an ``edgeprune`` sparse node with its activation fused (the op's fallback function travels in
the model, so stock onnxruntime still runs it) or a smaller standard layer (shrunk)."""

from __future__ import annotations

import onnx
from onnx import helper

from edgeprune.export.sites import ConvSite
from edgeprune.formats.compressed import Compressed
from edgeprune.formats.onnx_ops import DOMAIN, DOMAIN_VERSION, functions_for, shrunk_nodes, sparse_conv_node
from edgeprune.formats.shrunk import Shrunk


def rewrite(model: onnx.ModelProto, replacements: list[tuple[ConvSite, Compressed | Shrunk]]) -> onnx.ModelProto:
    """A copy of ``model`` with each site (from :func:`conv_sites` of this model) turned into an
    ``edgeprune`` node (sparse formats) or a smaller standard layer (shrunk); initializers
    nothing reads any more are dropped."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    drop: set[int] = set()
    new_nodes: dict[int, list[onnx.NodeProto]] = {}  # position -> replacement
    inits: list[onnx.TensorProto] = []
    for site, comp in replacements:
        args = (_safe(site.name), site.node.input[0], site.output)
        if isinstance(comp, Shrunk):
            new_nodes[site.index], extra = shrunk_nodes(*args, comp, site.attrs, site.act)
        else:
            node, extra = sparse_conv_node(*args, comp, site.bias, site.attrs, site.act)
            new_nodes[site.index] = [node]
        drop.update(site.fused)
        inits.extend(extra)
    nodes = [m for k, n in enumerate(out.graph.node) if k not in drop for m in new_nodes.get(k, [n])]
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    out.graph.initializer.extend(inits)
    used = {i for n in out.graph.node for i in n.input}
    kept = [i for i in out.graph.initializer if i.name in used]
    del out.graph.initializer[:]
    out.graph.initializer.extend(kept)
    op_types = {n.op_type for n in out.graph.node if n.domain == DOMAIN}
    if op_types:
        out.functions.extend(functions_for(op_types))
        out.opset_import.append(helper.make_opsetid(DOMAIN, DOMAIN_VERSION))
    return out


def _safe(name: str) -> str:
    """Node names become initializer prefixes: keep them readable and unique."""
    return name.strip("/").replace("/", ".") or "conv"
