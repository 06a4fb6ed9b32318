"""Single-convolution ONNX models, dense and sparse, for kernel timing (calibration and the
kernel benchmark). NumPy and onnx only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from edgeprune.bench.timing import Latency, interleaved
from edgeprune.formats.compressed import Compressed
from edgeprune.formats.onnx_ops import (
    DOMAIN,
    DOMAIN_VERSION,
    ConvAttrs,
    functions_for,
    shrunk_nodes,
    sparse_conv_node,
)
from edgeprune.formats.shrunk import Shrunk
from edgeprune.graph.onnx_version import IR_VERSION, OPSET
from edgeprune.runtime.kernel_library import session


def _io(cin: int, hw: int) -> tuple[list, list]:
    return ([helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, hw, hw])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)])  # fmt: skip


def dense_conv_model(w: np.ndarray, b: np.ndarray, hw: int, stride: int = 1) -> bytes:
    """Conv + Relu, 'same' padding: what onnxruntime runs for a dense layer."""
    k = w.shape[2]
    conv = helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[k, k], pads=[k // 2] * 4,
                            strides=[stride, stride])  # fmt: skip
    relu = helper.make_node("Relu", ["c"], ["y"])
    ins, outs = _io(w.shape[1], hw)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
    g = helper.make_graph([conv, relu], "dense", ins, outs, inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    return model.SerializeToString()


def sparse_conv_model(comp: Compressed, b: np.ndarray, hw: int, stride: int = 1) -> bytes:
    """The same layer as one ``edgeprune`` node with Relu fused."""
    out, cin, k, _ = comp.shape
    attrs = ConvAttrs((k, k), strides=(stride, stride), pads=(k // 2,) * 4)
    node, inits = sparse_conv_node("L", "x", "y", comp, b, attrs, "relu")
    ins, outs = _io(cin, hw)
    g = helper.make_graph([node], "sparse", ins, outs, inits)
    opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid(DOMAIN, DOMAIN_VERSION)]
    m = helper.make_model(g, opset_imports=opsets, ir_version=IR_VERSION, functions=functions_for({node.op_type}))
    return m.SerializeToString()


def shrunk_conv_model(s: Shrunk, hw: int) -> bytes:
    """The same layer with its removed filters physically gone (standard ops only)."""
    out, cin, k, _ = s.shape
    nodes, inits = shrunk_nodes("L", "x", "y", s, ConvAttrs((k, k), pads=(k // 2,) * 4), "relu")
    ins, outs = _io(cin, hw)
    g = helper.make_graph(nodes, "shrunk", ins, outs, inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    return model.SerializeToString()


def time_against_dense(
    dense_model: bytes, ours_model: bytes, x: np.ndarray, threads: int, library: Path, budget_s: float,
    min_runs: int = 20,
) -> tuple[Latency, Latency, np.ndarray, np.ndarray]:
    """Dense onnxruntime and our model of one layer, timed in turns: (dense, ours) latencies and
    their outputs on ``x``."""
    dense = session(dense_model, threads)
    ours = session(ours_model, threads, library)
    feed = {"x": x}
    want, got = dense.run(None, feed)[0], ours.run(None, feed)[0]
    lat = interleaved({"dense": lambda: dense.run(None, feed), "ours": lambda: ours.run(None, feed)},
                      budget_s=budget_s, min_runs=min_runs)  # fmt: skip
    return lat["dense"], lat["ours"], want, got


def random_weight(
    rng: np.random.Generator, cout: int, cin: int, k: int, density: float, block: tuple[int, int] = (1, 1)
) -> np.ndarray:
    """A weight whose r x c blocks are kept with probability ``density``."""
    w = rng.standard_normal((cout, cin, k, k)).astype(np.float32)
    r, c = block
    keep = rng.random((cout // r, cin * k * k // c)) < density
    return w * np.repeat(np.repeat(keep, r, axis=0), c, axis=1).reshape(w.shape)
