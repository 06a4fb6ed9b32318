"""The prunable convolutions of a dense ONNX graph, each with the activation that follows it
(which a sparse kernel fuses): what every backend's per-layer choice starts from. No torch here.

A convolution qualifies when its weight is an initializer, it is 2-D and not grouped
(depthwise and grouped convolutions stay standard Conv nodes).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgeprune.formats.onnx_ops import ConvAttrs


@dataclasses.dataclass
class ConvSite:
    """One Conv node that can take a sparse format."""

    index: int  # position in graph.node
    node: onnx.NodeProto
    weight: np.ndarray
    bias: np.ndarray
    attrs: ConvAttrs
    act: str  # none | relu | relu6 | silu: the activation fused into the new node
    fused: list[int]  # positions of the activation nodes the new node replaces
    output: str  # the tensor the new node writes (the activation's output when fused)

    @property
    def name(self) -> str:
        return self.node.name or self.node.output[0]

    @property
    def density(self) -> float:
        return float(np.count_nonzero(self.weight)) / self.weight.size


def _constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    out = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            out[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    return out


def _attr(node: onnx.NodeProto, name: str, default: Any) -> Any:  # noqa: ANN401 - ONNX attributes are untyped
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _fusable_activation(
    node: onnx.NodeProto, consumers: dict[str, list[onnx.NodeProto]], consts: dict[str, np.ndarray], outputs: set[str]
) -> tuple[str, list[onnx.NodeProto], str]:
    y = node.output[0]
    users = consumers.get(y, [])
    if y in outputs:
        return "none", [], y
    if len(users) == 1 and users[0].op_type == "Relu":
        return "relu", users, users[0].output[0]
    if len(users) == 1 and users[0].op_type == "Clip":
        lo = consts.get(users[0].input[1]) if len(users[0].input) > 1 else None
        hi = consts.get(users[0].input[2]) if len(users[0].input) > 2 else None
        if lo is not None and hi is not None and float(lo) == 0.0 and float(hi) == 6.0:
            return "relu6", users, users[0].output[0]
    if len(users) == 2:
        sig = next((u for u in users if u.op_type == "Sigmoid"), None)
        mul = next((u for u in users if u.op_type == "Mul"), None)
        if sig and mul and set(mul.input) == {y, sig.output[0]} and consumers.get(sig.output[0]) == [mul]:
            return "silu", [sig, mul], mul.output[0]
    return "none", [], y


def conv_sites(model: onnx.ModelProto) -> list[ConvSite]:
    consts = _constants(model)
    nodes = list(model.graph.node)
    position = {n.output[0]: k for k, n in enumerate(nodes) if n.output}
    consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for n in nodes:
        for i in n.input:
            consumers[i].append(n)
    outputs = {o.name for o in model.graph.output}
    sites = []
    for index, node in enumerate(nodes):
        if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in consts:
            continue
        w = consts[node.input[1]].astype(np.float32)
        explicit_pads = _attr(node, "auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
        if w.ndim != 4 or int(_attr(node, "group", 1)) != 1 or not explicit_pads:
            continue
        bias = consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else np.zeros(w.shape[0], np.float32)
        if bias is None:
            continue  # a computed bias: leave the node alone
        attrs = ConvAttrs(
            kernel_shape=tuple(_attr(node, "kernel_shape", list(w.shape[2:]))),
            strides=tuple(_attr(node, "strides", [1, 1])),
            pads=tuple(_attr(node, "pads", [0, 0, 0, 0])),
            dilations=tuple(_attr(node, "dilations", [1, 1])),
        )
        act, fused, out = _fusable_activation(node, consumers, consts, outputs)
        sites.append(ConvSite(index, node, w, bias.astype(np.float32), attrs, act,
                              [position[f.output[0]] for f in fused], out))  # fmt: skip
    return sites
