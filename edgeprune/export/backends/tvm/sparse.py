"""Sparse layers into a Relax module: each planned CSR, BSR or N:M convolution becomes
``R.call_dps_packed("edgeprune_sparse_conv2d", ...)``, the C++ kernels of ``kernels/`` reached
through tvm-ffi (``kernels/tvm/edgeprune_tvm.cpp``, linked into the module library), with the
weight in its format, the bias and the activation as constants of the module.

The dense graph is imported with ``relax.frontend.onnx.from_onnx`` after
:func:`~edgeprune.export.backends.tvm.graph.for_relax`, so a sparse layer arrives as
``conv2d(x, W)`` (+ ``add(reshape(b))`` when it has a bias). A call is recognised by its weight
constant: the content of W names the planned layer, which holds the kernel's arrays.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx

from edgeprune.errors import UserError
from edgeprune.export.plan import PlannedLayer
from edgeprune.formats.compressed import Compressed

FUNCTION = "edgeprune_sparse_conv2d"  # the symbol kernels/tvm/edgeprune_tvm.cpp exports
FORMATS = {"csr": 0, "bsr": 1, "nm": 2}  # ep_format
ACTIVATIONS = {"none": 0, "relu": 1, "relu6": 2, "silu": 3}  # ep_act


def _weight_key(w: np.ndarray) -> tuple[tuple[int, ...], str]:
    return tuple(int(d) for d in w.shape), hashlib.sha256(np.ascontiguousarray(w, np.float32).tobytes()).hexdigest()


def import_onnx(model: onnx.ModelProto, input_shape: list[int]) -> Any:
    """The graph as a Relax module with the input's shape fixed; an operator the importer
    refuses is named with its layer."""
    from tvm.relax.frontend.onnx import from_onnx

    name = model.graph.input[0].name
    try:
        return from_onnx(model, shape_dict={name: input_shape})
    except Exception as exc:  # noqa: BLE001 - the importer raises many types; name the node
        op = next((n for n in model.graph.node if n.op_type in str(exc)), None)
        where = f" (layer {op.name or op.output[0]}, op {op.op_type})" if op is not None else ""
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:300]
        raise UserError(f"TVM's ONNX importer refused the model{where}: {first}") from None


def spec(comp: Compressed, layer: PlannedLayer, attrs: Any) -> np.ndarray:
    """The kernel's int64 description of one convolution (kernels/tvm/edgeprune_tvm.cpp)."""
    w = layer.site.weight
    stride, pad, dil = (list(map(int, a)) for a in (attrs.strides, attrs.padding, attrs.dilation))
    block = comp.block if comp.fmt == "bsr" else (0, 0)
    nm = comp.nm if comp.fmt == "nm" else (0, 0)
    return np.array([FORMATS[comp.fmt], w.shape[0], w.shape[2], w.shape[3], *stride, pad[0], pad[1], pad[2], pad[3],
                     *dil, ACTIVATIONS[layer.site.act], *block, *nm], dtype=np.int64)  # fmt: skip


def packed_call(layer: PlannedLayer, conv: Any, ty: Any) -> Any:
    """Our C++ kernel in place of ``conv`` (the layer's ``relax.nn.conv2d`` call; its bias and
    activation are fused): ``R.call_dps_packed`` with the weight in its format as constants."""
    from tvm import relax

    comp = layer.weight
    assert isinstance(comp, Compressed)
    arrays = comp.arrays
    empty_i32, empty_u8 = np.zeros(0, np.int32), np.zeros(0, np.uint8)
    args = [spec(comp, layer, conv.attrs), arrays["values"], arrays.get("indices", empty_i32),
            arrays.get("ptr", empty_i32), arrays.get("nm_idx", empty_u8), layer.site.bias.astype(np.float32)]
    # relax.const narrows int64 to int32 unless told the type
    consts = [relax.const(np.ascontiguousarray(a), dtype=str(a.dtype)) for a in args]
    return relax.call_dps_packed(FUNCTION, [conv.args[0], *consts], out_ty=ty)


Kernel = Callable[[PlannedLayer, Any, Any], Any]


def replace_sparse(mod: Any, layers: list[PlannedLayer], kernel: Kernel = packed_call) -> tuple[Any, int]:
    """``mod`` with every planned sparse layer's ``conv2d`` (+ bias) replaced by
    ``kernel(layer, conv2d call, output type)``; the number of calls made. A planned layer the
    module does not show is an error."""
    from tvm.relax.dpl import is_const, is_op, rewrite_call, wildcard

    sparse = {_weight_key(p.site.weight): p for p in layers if isinstance(p.weight, Compressed)}
    if not sparse:
        return mod, 0
    # a layer is found by its weight: two layers with one weight (a shared head) cannot be told apart
    for p in layers:
        other = sparse.get(_weight_key(p.site.weight))
        if other is not None and other is not p:
            raise UserError(f"layers {other.site.name} and {p.site.name} have the same weight, which the TVM backend "
                            "cannot tell apart; compile with --backend onnxruntime")  # fmt: skip
    weight = is_const()
    conv = is_op("relax.nn.conv2d")(wildcard(), weight)
    bias = is_const()
    pattern = is_op("relax.add")(conv, is_op("relax.reshape")(bias, wildcard()) | bias) | conv
    done: set[tuple[tuple[int, ...], str]] = set()

    def rewriter(expr: Any, matches: Any) -> Any:
        key = _weight_key(matches[weight].value.numpy())
        layer = sparse.get(key)
        call = matches[conv]
        if layer is None or int(call.attrs.groups) != 1 or str(call.attrs.data_layout) != "NCHW":
            return expr
        if bias in matches:  # conv + a constant: it must be the layer's own bias, which the kernel adds
            added = matches[bias].value.numpy().reshape(-1)
            if added.shape != layer.site.bias.shape or not np.array_equal(added, layer.site.bias.astype(added.dtype)):
                raise UserError(f"layer {layer.site.name}: the constant added after it is not its bias; the TVM "
                                "backend cannot fuse it: compile with --backend onnxruntime")  # fmt: skip
        done.add(key)
        return kernel(layer, call, expr.ty)

    main = rewrite_call(pattern, rewriter, mod["main"])
    missing = [p.site.name for k, p in sparse.items() if k not in done]
    if missing:
        raise UserError(f"TVM backend: the sparse layers {', '.join(missing[:3])} were not found in the imported "
                        "module (an importer change?); compile them with --backend onnxruntime")  # fmt: skip
    mod["main"] = main
    return mod, len(done)
