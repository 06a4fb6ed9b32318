"""The ``edgeprune`` ONNX domain: one sparse-convolution node per pruned layer, and for each op
type a model-local function that rebuilds the dense weight from the same arrays and runs a
standard Conv, so a stock onnxruntime without our library still runs the file, correctly
(it folds the rebuild into a constant dense weight at load).

Op types are ``<Csr|Bsr|Nm>Conv<""|Relu|Relu6|Silu>``; inputs and attributes are documented in
``kernels/ort/edgeprune_ort.cpp``. The library's kernel replaces the function when registered.
A physically shrunk layer needs no custom op: :func:`shrunk_nodes` writes it in standard ops.

Usage::

    node, inits = sparse_conv_node("layer1", "x", "y", to_csr(w), bias, conv, "relu")
    model.functions.extend(functions_for({node.op_type}))
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from edgeprune.formats.activations import ACTIVATIONS, activation_nodes
from edgeprune.formats.compressed import Compressed
from edgeprune.formats.shrunk import Shrunk
from edgeprune.graph.onnx_version import OPSET

DOMAIN = "edgeprune"
DOMAIN_VERSION = 1
_FORMATS = {"csr": "Csr", "bsr": "Bsr", "nm": "Nm"}
_ZERO_F32 = numpy_helper.from_array(np.array([0], np.float32))


@dataclasses.dataclass(frozen=True)
class ConvAttrs:
    kernel_shape: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)  # ONNX order: top, left, bottom, right
    dilations: tuple[int, int] = (1, 1)

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        """(out_h, out_w) of this convolution on an h x w input (ONNX's formula)."""
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_shape, self.strides, self.dilations
        t, left, b, r = self.pads
        return (h + t + b - dh * (kh - 1) - 1) // sh + 1, (w + left + r - dw * (kw - 1) - 1) // sw + 1


def op_type(fmt: str, act: str) -> str:
    return f"{_FORMATS[fmt]}Conv{ACTIVATIONS[act].op_suffix}"


def parse_op_type(name: str) -> tuple[str, str]:
    for fmt, prefix in _FORMATS.items():
        for act, spec in ACTIVATIONS.items():
            if name == f"{prefix}Conv{spec.op_suffix}":
                return fmt, act
    raise KeyError(name)


def _ref(name: str, ref: str, kind: AttributeProto.AttributeType) -> AttributeProto:
    return AttributeProto(name=name, ref_attr_name=ref, type=kind)


def _const(out: str, value: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [out], value=numpy_helper.from_array(np.asarray(value), out))


def _const_ref(out: str, attr: str, kind: AttributeProto.AttributeType = AttributeProto.INTS) -> onnx.NodeProto:
    node = helper.make_node("Constant", [], [out])
    node.attribute.append(_ref("value_ints" if kind == AttributeProto.INTS else "value_int", attr, kind))
    return node


def _rows_from_ptr(ptr: str, count_of: str, prefix: str) -> list[onnx.NodeProto]:
    """Row index of every stored entry from CSR row pointers, in O(entries): mark where each
    row after the first starts, then a running sum. ``count_of`` is a tensor whose first dim
    is the number of entries."""
    p = prefix
    return [
        helper.make_node("Shape", [count_of], [f"{p}n"], start=0, end=1),
        _const(f"{p}one", np.array([1], np.int64)),
        _const(f"{p}zero", np.array([0], np.int64)),
        _const(f"{p}minus1", np.array([-1], np.int64)),
        helper.make_node("Add", [f"{p}n", f"{p}one"], [f"{p}n1"]),
        helper.make_node("ConstantOfShape", [f"{p}n1"], [f"{p}marks0"],
                         value=numpy_helper.from_array(np.array([0], np.int64))),  # fmt: skip
        helper.make_node("Slice", [ptr, f"{p}one", f"{p}minus1"], [f"{p}inner32"]),
        helper.make_node("Cast", [f"{p}inner32"], [f"{p}inner"], to=TensorProto.INT64),
        helper.make_node("Shape", [f"{p}inner"], [f"{p}ninner"]),
        helper.make_node("ConstantOfShape", [f"{p}ninner"], [f"{p}ones"],
                         value=numpy_helper.from_array(np.array([1], np.int64))),  # fmt: skip
        helper.make_node("ScatterElements", [f"{p}marks0", f"{p}inner", f"{p}ones"], [f"{p}marks"], reduction="add"),
        helper.make_node("CumSum", [f"{p}marks", f"{p}zero"], [f"{p}rows_all"]),
        helper.make_node("Slice", [f"{p}rows_all", f"{p}zero", f"{p}n"], [f"{p}rows"]),
    ]


def _dense_csr() -> list[onnx.NodeProto]:
    return [
        *_rows_from_ptr("ptr", "values", "r_"),
        _const_ref("ws", "weight_shape"),
        helper.make_node("ReduceProd", ["ws"], ["total"], keepdims=1),
        helper.make_node("Slice", ["ws", "r_zero", "r_one"], ["outc"]),
        helper.make_node("Div", ["total", "outc"], ["k"]),
        helper.make_node("Mul", ["r_rows", "k"], ["rowbase"]),
        helper.make_node("Cast", ["indices"], ["cols"], to=TensorProto.INT64),
        helper.make_node("Add", ["rowbase", "cols"], ["flat"]),
        helper.make_node("ConstantOfShape", ["total"], ["zeros"], value=_ZERO_F32),
        helper.make_node("ScatterElements", ["zeros", "flat", "values"], ["dflat"]),
        helper.make_node("Reshape", ["dflat", "ws"], ["W"]),
    ]


def _dense_bsr() -> list[onnx.NodeProto]:
    return [
        _const_ref("ws", "weight_shape"),
        _const_ref("grid", "grid"),  # block rows, block cols, r, c
        *_rows_from_ptr("ptr", "indices", "r_"),
        helper.make_node("Cast", ["indices"], ["bcol"], to=TensorProto.INT64),
        helper.make_node("Unsqueeze", ["r_rows", "r_one"], ["brow2"]),
        helper.make_node("Unsqueeze", ["bcol", "r_one"], ["bcol2"]),
        helper.make_node("Concat", ["brow2", "bcol2"], ["where"], axis=1),
        helper.make_node("ConstantOfShape", ["grid"], ["zeros"], value=_ZERO_F32),
        helper.make_node("ScatterND", ["zeros", "where", "values"], ["blocks"]),
        helper.make_node("Transpose", ["blocks"], ["rows"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["rows", "ws"], ["W"]),
    ]


def _dense_nm() -> list[onnx.NodeProto]:
    return [
        _const_ref("ws", "weight_shape"),
        _const_ref("cl", "channel_last_shape"),  # out, kh, kw, in
        _const_ref("n", "n", AttributeProto.INT),
        _const_ref("m", "m", AttributeProto.INT),
        _const("zero", np.array(0, np.int64)),
        _const("one", np.array(1, np.int64)),
        _const("two_d", np.array([0, -1], np.int64)),
        helper.make_node("Shape", ["values"], ["vshape"]),
        helper.make_node("Gather", ["vshape", "one"], ["per_row"]),
        helper.make_node("Range", ["zero", "per_row", "one"], ["j"]),
        helper.make_node("Div", ["j", "n"], ["group"]),
        helper.make_node("Mul", ["group", "m"], ["base"]),
        helper.make_node("Cast", ["nm_idx"], ["pos"], to=TensorProto.INT64),
        helper.make_node("Add", ["pos", "base"], ["cols"]),
        helper.make_node("ConstantOfShape", ["cl"], ["zeros4"], value=_ZERO_F32),
        helper.make_node("Reshape", ["zeros4", "two_d"], ["zeros"]),
        helper.make_node("ScatterElements", ["zeros", "cols", "values"], ["last"], axis=1),
        helper.make_node("Reshape", ["last", "cl"], ["last4"]),
        helper.make_node("Transpose", ["last4"], ["W"], perm=[0, 3, 1, 2]),
    ]


def function_proto(fmt: str, act: str) -> onnx.FunctionProto:
    """The standard-ONNX definition of one op type."""
    conv = helper.make_node("Conv", ["X", "W", "bias"], ["Yc"])
    conv.attribute.extend(_ref(a, a, AttributeProto.INTS) for a in ("kernel_shape", "strides", "pads", "dilations"))
    build = {"csr": _dense_csr, "bsr": _dense_bsr, "nm": _dense_nm}[fmt]()
    inputs = {"csr": ["X", "values", "indices", "ptr", "bias"], "bsr": ["X", "values", "indices", "ptr", "bias"],
              "nm": ["X", "values", "nm_idx", "bias"]}[fmt]  # fmt: skip
    attrs = ["kernel_shape", "strides", "pads", "dilations", "weight_shape"]
    attrs += {"csr": [], "bsr": ["block", "grid"], "nm": ["n", "m", "channel_last_shape"]}[fmt]
    return helper.make_function(
        DOMAIN, op_type(fmt, act), inputs, ["Y"], [*build, conv, *activation_nodes("Yc", "Y", act, "a_")],
        [helper.make_opsetid("", OPSET)], attributes=attrs,
    )  # fmt: skip


def functions_for(op_types: set[str]) -> list[onnx.FunctionProto]:
    return [function_proto(*parse_op_type(t)) for t in sorted(op_types)]


def sparse_conv_node(
    name: str, x: str, y: str, comp: Compressed, bias: np.ndarray, conv: ConvAttrs, act: str
) -> tuple[onnx.NodeProto, list[TensorProto]]:
    """One ``edgeprune`` node and its initializers (named after the layer)."""
    inputs = [x]
    inits = []
    keys = ["values", "indices", "ptr"] if comp.fmt in ("csr", "bsr") else ["values", "nm_idx"]
    for key in [*keys, "bias"]:
        arr = comp.arrays[key] if key != "bias" else np.asarray(bias, np.float32)
        init_name = f"{name}.{key}"
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), init_name))
        inputs.append(init_name)
    out, cin, kh, kw = comp.shape
    attrs: dict[str, Any] = {
        "kernel_shape": list(conv.kernel_shape), "strides": list(conv.strides), "pads": list(conv.pads),
        "dilations": list(conv.dilations), "weight_shape": [out, cin, kh, kw],
    }  # fmt: skip
    if comp.fmt == "bsr":
        r, c = comp.block
        attrs.update(block=[r, c], grid=[out // r, cin * kh * kw // c, r, c])
    if comp.fmt == "nm":
        attrs.update(n=comp.nm[0], m=comp.nm[1], channel_last_shape=[out, kh, kw, cin])
    node = helper.make_node(op_type(comp.fmt, act), inputs, [y], name=name, domain=DOMAIN, **attrs)
    return node, inits


def shrunk_nodes(
    name: str, x: str, y: str, s: Shrunk, conv: ConvAttrs, act: str
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Standard nodes computing the original layer's output from the shrunk weights."""
    p = name
    nodes: list[onnx.NodeProto] = []
    inits = [numpy_helper.from_array(s.weight, f"{p}.weight"), numpy_helper.from_array(s.bias, f"{p}.bias")]
    src = x
    if s.keep_in.size < s.shape[1]:
        inits.append(numpy_helper.from_array(s.keep_in, f"{p}.keep_in"))
        nodes.append(helper.make_node("Gather", [x, f"{p}.keep_in"], [f"{p}.x"], axis=1))
        src = f"{p}.x"
    nodes.append(helper.make_node("Conv", [src, f"{p}.weight", f"{p}.bias"], [f"{p}.conv"], name=f"{p}.conv",
                                  kernel_shape=list(conv.kernel_shape), strides=list(conv.strides),
                                  pads=list(conv.pads), dilations=list(conv.dilations)))  # fmt: skip
    full = s.keep_out.size == s.shape[0]
    nodes += activation_nodes(f"{p}.conv", y if full else f"{p}.kept", act, f"{p}.")
    if full:
        return nodes, inits
    removed = s.shape[0] - s.keep_out.size
    # Constant planes for the removed filters, then every channel back in its place.
    order = np.empty(s.shape[0], np.int64)
    order[s.keep_out] = np.arange(s.keep_out.size)
    order[np.setdiff1d(np.arange(s.shape[0]), s.keep_out)] = s.keep_out.size + np.arange(removed)
    inits += [
        numpy_helper.from_array(s.constant.reshape(1, removed, 1, 1), f"{p}.constant"),
        numpy_helper.from_array(np.array([removed], np.int64), f"{p}.removed"),
        numpy_helper.from_array(np.array([0], np.int64), f"{p}.i0"),
        numpy_helper.from_array(np.array([1], np.int64), f"{p}.i1"),
        numpy_helper.from_array(np.array([2], np.int64), f"{p}.i2"),
        numpy_helper.from_array(np.array([4], np.int64), f"{p}.i4"),
        numpy_helper.from_array(order, f"{p}.order"),
    ]
    nodes += [
        helper.make_node("Shape", [f"{p}.kept"], [f"{p}.shape"]),
        helper.make_node("Slice", [f"{p}.shape", f"{p}.i0", f"{p}.i1"], [f"{p}.n"]),
        helper.make_node("Slice", [f"{p}.shape", f"{p}.i2", f"{p}.i4"], [f"{p}.hw"]),
        helper.make_node("Concat", [f"{p}.n", f"{p}.removed", f"{p}.hw"], [f"{p}.cshape"], axis=0),
        helper.make_node("Expand", [f"{p}.constant", f"{p}.cshape"], [f"{p}.planes"]),
        helper.make_node("Concat", [f"{p}.kept", f"{p}.planes"], [f"{p}.all"], axis=1),
        helper.make_node("Gather", [f"{p}.all", f"{p}.order"], [y], axis=1),
    ]
    return nodes, inits
