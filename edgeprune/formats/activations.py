"""The activations a sparse layer fuses, defined once for Python: the name the manifest and the
kernels use, the suffix of the ``edgeprune`` op type, the value in NumPy, and the standard ONNX
nodes that compute it (used by the ops' fallback functions and by shrunk layers alike).
The C++ side defines them once too (``kernels/src/activation.h``); the kernel tests hold the
two to the same numbers.

Usage::

    apply("relu6", x)                                  # NumPy
    activation_nodes("conv_out", "y", "silu", "L1.")   # standard ONNX nodes x -> y
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper


@dataclasses.dataclass(frozen=True)
class Activation:
    name: str  # none | relu | relu6 | silu
    op_suffix: str  # edgeprune op types are <Format>Conv<suffix>
    numpy: Callable[[np.ndarray], np.ndarray]


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("none", "", lambda v: v),
        Activation("relu", "Relu", lambda v: np.maximum(v, 0)),
        Activation("relu6", "Relu6", lambda v: np.clip(v, 0, 6)),
        Activation("silu", "Silu", lambda v: v / (1 + np.exp(-v))),
    )
}


def apply(act: str, v: np.ndarray) -> np.ndarray:
    return ACTIVATIONS[act].numpy(v)


def _constant(out: str, value: float) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [out], value=numpy_helper.from_array(np.array(value, np.float32), out))


def activation_nodes(x: str, y: str, act: str, prefix: str) -> list[onnx.NodeProto]:
    """Standard ONNX nodes computing ``y = act(x)``; intermediate names start with ``prefix``."""
    if act == "none":
        return [helper.make_node("Identity", [x], [y])]
    if act == "relu":
        return [helper.make_node("Relu", [x], [y])]
    if act == "relu6":
        return [_constant(f"{prefix}lo", 0.0), _constant(f"{prefix}hi", 6.0),
                helper.make_node("Clip", [x, f"{prefix}lo", f"{prefix}hi"], [y])]  # fmt: skip
    if act == "silu":
        return [helper.make_node("Sigmoid", [x], [f"{prefix}sig"]), helper.make_node("Mul", [x, f"{prefix}sig"], [y])]
    raise KeyError(act)
