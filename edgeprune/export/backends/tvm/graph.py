"""The ONNX graph the TVM backend imports into Relax: the dense graph with the plan applied where
standard operators can express it, and inference-mode batch normalisations that follow no
convolution (the decoders' BatchNormalization after a Resize or an Add) as one multiply and one
add with constants: TVM legalises BatchNormalization literally, a square root and a division per
element. A shrunk layer becomes its smaller standard layers (as in the
ONNX Runtime backend); a sparse layer keeps its Conv node (with its bias) but loses the
activation the kernel fuses, so that after import it is one ``conv2d`` (+ bias ``add``) that
:mod:`edgeprune.export.backends.tvm.sparse` replaces with a call of our kernel."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

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


def freeze_shapes(model: onnx.ModelProto, example: np.ndarray) -> onnx.ModelProto:
    """A copy of ``model`` in which every value computed from shapes and constants only (the
    ``Shape -> Gather -> ... -> Pad`` chains of TensorFlow-style "same" padding) is a constant:
    the input shape is fixed, so these values are too, and TVM's importer refuses a Pad or a
    Reshape whose sizes are computed at run time. ONNX Runtime computes them on ``example``."""
    from edgeprune.runtime.kernel_library import session

    graph = model.graph
    static = {t.name for t in graph.initializer}
    for n in graph.node:
        if n.op_type in ("Shape", "Size", "Constant") or (n.input and all(i in static or not i for i in n.input)):
            static.update(n.output)
    dynamic_nodes = [n for n in graph.node if not all(o in static for o in n.output)]
    inits = {t.name for t in graph.initializer}
    need = sorted({i for n in dynamic_nodes for i in n.input if i in static and i not in inits}
                  | {o.name for o in graph.output if o.name in static and o.name not in inits})  # fmt: skip
    if not need:
        return model
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(helper.make_empty_tensor_value_info(v) for v in need)
    values = session(probe.SerializeToString()).run(need, {graph.input[0].name: example})
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.node[:]
    out.graph.node.extend(dynamic_nodes)
    frozen = zip(need, values, strict=True)
    out.graph.initializer.extend(numpy_helper.from_array(np.asarray(v), name) for name, v in frozen)
    return out


def fold_batch_norms(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` with every inference-mode BatchNormalization of an NCHW tensor whose
    parameters are constants (and that returns its output only) as ``x * scale + shift``."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    consts = {t.name: t for t in out.graph.initializer}
    rank = _ranks(out)
    nodes: list[onnx.NodeProto] = []
    for n in out.graph.node:
        training = any(a.name == "training_mode" and a.i for a in n.attribute)
        if (n.op_type != "BatchNormalization" or len(n.output) != 1 or training or rank.get(n.input[0]) != 4
                or not all(i in consts for i in n.input[1:5])):  # fmt: skip
            nodes.append(n)
            continue
        gamma, beta, mean, var = (numpy_helper.to_array(consts[i]).astype(np.float64) for i in n.input[1:5])
        eps = next((a.f for a in n.attribute if a.name == "epsilon"), 1e-5)
        scale = gamma / np.sqrt(var + eps)
        shift = beta - mean * scale
        s_name, t_name = f"{n.output[0]}.bn_scale", f"{n.output[0]}.bn_shift"
        out.graph.initializer.extend([numpy_helper.from_array(scale.astype(np.float32).reshape(-1, 1, 1), s_name),
                                      numpy_helper.from_array(shift.astype(np.float32).reshape(-1, 1, 1), t_name)])
        nodes += [helper.make_node("Mul", [n.input[0], s_name], [f"{n.output[0]}.bn_scaled"]),
                  helper.make_node("Add", [f"{n.output[0]}.bn_scaled", t_name], [n.output[0]])]  # fmt: skip
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    used = {i for n in nodes for i in n.input} | {o.name for o in out.graph.output}
    kept = [t for t in out.graph.initializer if t.name in used]
    del out.graph.initializer[:]
    out.graph.initializer.extend(kept)
    return out


def _ranks(model: onnx.ModelProto) -> dict[str, int]:
    """The rank of every value ONNX's shape inference can tell."""
    inferred = onnx.shape_inference.infer_shapes(model)
    infos = [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]
    return {v.name: len(v.type.tensor_type.shape.dim) for v in infos if v.type.tensor_type.HasField("shape")}


def fold_pads(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` in which a zero Pad of the spatial dimensions that only Convs read
    (TensorFlow-style "same" padding before a strided or depthwise convolution) is folded into
    those Convs' own padding. TVM would otherwise run it as a separate pass over the tensor or
    fuse it after the previous convolution, where no schedule template applies."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    outputs = {o.name for o in graph.output}
    dropped = []
    for n in graph.node:
        pads = _spatial_zero_pad(n, consts)
        users = readers.get(n.output[0], []) if pads is not None else []
        if pads is None or not users or n.output[0] in outputs or not all(_foldable(u, n.output[0]) for u in users):
            continue
        for conv in users:
            attr = next((a for a in conv.attribute if a.name == "pads"), None)
            old = list(attr.ints) if attr is not None else [0, 0, 0, 0]
            new = [a + b for a, b in zip(old, pads, strict=True)]
            if attr is None:
                conv.attribute.append(helper.make_attribute("pads", new))
            else:
                attr.ints[:] = new
            conv.input[0] = n.input[0]
        dropped.append(n)
    kept = [n for n in graph.node if not any(n is d for d in dropped)]
    del graph.node[:]
    graph.node.extend(kept)
    return out


def _spatial_zero_pad(n: onnx.NodeProto, consts: dict[str, np.ndarray]) -> list[int] | None:
    """[top, left, bottom, right] of a constant-zero Pad of an NCHW tensor's H and W, else None."""
    if n.op_type != "Pad" or len(n.input) < 2 or n.input[1] not in consts:
        return None
    if any(a.name == "mode" and a.s not in (b"constant", b"") for a in n.attribute):
        return None
    if len(n.input) > 2 and n.input[2] and (n.input[2] not in consts or np.any(consts[n.input[2]] != 0)):
        return None
    if len(n.input) > 3 and n.input[3]:  # axes
        return None
    p = [int(v) for v in consts[n.input[1]].ravel()]
    if len(p) != 8 or any(p[i] for i in (0, 1, 4, 5)) or any(v < 0 for v in p):
        return None
    return [p[2], p[3], p[6], p[7]]


def _foldable(node: onnx.NodeProto, value: str) -> bool:
    """A 2-D Conv that reads ``value`` as its data input only, with explicit padding."""
    auto = next((a.s for a in node.attribute if a.name == "auto_pad"), b"NOTSET")
    return (node.op_type == "Conv" and node.input[0] == value and value not in node.input[1:]
            and auto in (b"NOTSET", b"") and len(next((a.ints for a in node.attribute if a.name == "kernel_shape"),
                                                      [0, 0])) == 2)  # fmt: skip
