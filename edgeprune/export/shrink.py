"""Physically shrunk layers: a convolution whose pruning removed whole output filters (and so,
perhaps, whole input channels for every filter) becomes a smaller standard Conv.

Exactness: a removed filter's output is not zero but the constant act(bias) (BatchNorm folded
into the bias), so it is restored as a constant plane and the channels are put back in their
order. Removed input channels are gathered away before the smaller Conv. Everything is
standard ONNX; nothing here needs the kernel library.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgeprune.export.sparse_ops import ConvAttrs


@dataclasses.dataclass
class Shrunk:
    keep_out: np.ndarray  # int64 indices of the filters kept
    keep_in: np.ndarray  # int64 indices of the input channels some kept filter reads
    weight: np.ndarray  # kept_out x kept_in x kh x kw
    bias: np.ndarray  # kept_out
    constant: np.ndarray  # act(bias) of each removed filter, in channel order
    shape: tuple[int, ...]  # the original weight's shape

    @property
    def fraction(self) -> float:
        """Share of the dense layer's multiply-adds that remain."""
        return self.weight.size / float(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return int(self.weight.nbytes + self.bias.nbytes + self.constant.nbytes + 8 * self.keep_in.size)


def _act(v: np.ndarray, act: str) -> np.ndarray:
    if act == "relu":
        return np.maximum(v, 0)
    if act == "relu6":
        return np.clip(v, 0, 6)
    if act == "silu":
        return v / (1 + np.exp(-v))
    return v


def shrink(w: np.ndarray, bias: np.ndarray, act: str) -> Shrunk | None:
    """None when no whole filter can go (or every filter went). Input channels no kept filter
    reads go too, but alone they are not worth a copy of the input."""
    keep_out = np.flatnonzero(np.abs(w).reshape(w.shape[0], -1).sum(axis=1) != 0)
    if keep_out.size in (0, w.shape[0]):
        return None
    keep_in = np.flatnonzero(np.abs(w[keep_out]).sum(axis=(0, 2, 3)) != 0)
    if keep_in.size == 0:
        return None
    small = np.ascontiguousarray(w[np.ix_(keep_out, keep_in)])
    removed = np.setdiff1d(np.arange(w.shape[0]), keep_out)
    constant = _act(bias[removed].astype(np.float32), act).astype(np.float32)
    return Shrunk(keep_out.astype(np.int64), keep_in.astype(np.int64), small, bias[keep_out].astype(np.float32),
                  constant, tuple(w.shape))  # fmt: skip


def _activation_nodes(x: str, y: str, act: str, p: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    if act == "none":
        return [helper.make_node("Identity", [x], [y])], []
    if act == "relu":
        return [helper.make_node("Relu", [x], [y])], []
    if act == "relu6":
        inits = [numpy_helper.from_array(np.array(0, np.float32), f"{p}.lo"),
                 numpy_helper.from_array(np.array(6, np.float32), f"{p}.hi")]  # fmt: skip
        return [helper.make_node("Clip", [x, f"{p}.lo", f"{p}.hi"], [y])], inits
    return [helper.make_node("Sigmoid", [x], [f"{p}.sig"]), helper.make_node("Mul", [x, f"{p}.sig"], [y])], []


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
    act_nodes, act_inits = _activation_nodes(f"{p}.conv", y if full else f"{p}.kept", act, p)
    nodes += act_nodes
    inits += act_inits
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
