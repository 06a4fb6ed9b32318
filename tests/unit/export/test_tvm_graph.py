"""The TVM backend's graph rewrites: batch normalisations folded to a multiply and an add, and
bilinear resizes made separable, each computing what ONNX Runtime computes."""

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

tvm = pytest.importorskip("tvm", reason="needs apache-tvm (pip install -e '.[dev]')")

from edgeprune.errors import UserError  # noqa: E402
from edgeprune.export.backends.tvm.build import compile_module  # noqa: E402
from edgeprune.export.backends.tvm.graph import fold_batch_norms, fold_pads, freeze_shapes  # noqa: E402
from edgeprune.export.backends.tvm.resize import replace_resizes  # noqa: E402
from edgeprune.export.backends.tvm.sparse import import_onnx  # noqa: E402
from edgeprune.export.backends.tvm.target import tvm_target, vector_lanes  # noqa: E402
from edgeprune.targets import load_target  # noqa: E402


def model(nodes, x_shape, y_shape, inits):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])  # fmt: skip
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 9
    return m


def ort_run(m, x):
    return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def tvm_run(m, x):
    target = tvm_target(load_target("host"))
    exe, _, _ = compile_module(import_onnx(m, list(x.shape)), target, vector_lanes(target))
    return tvm.relax.VirtualMachine(exe, tvm.cpu())["main"](tvm.runtime.tensor(x)).numpy()


def test_a_batch_norm_becomes_a_multiply_and_an_add_with_the_same_outputs():
    rng = np.random.default_rng(0)
    c = 8
    inits = {"g": rng.uniform(0.5, 2, c), "b": rng.standard_normal(c), "m": rng.standard_normal(c),
             "v": rng.uniform(0.1, 3, c)}  # fmt: skip
    inits = {k: v.astype(np.float32) for k, v in inits.items()}
    nodes = [helper.make_node("BatchNormalization", ["x", "g", "b", "m", "v"], ["n"], epsilon=1e-3),
             helper.make_node("Relu", ["n"], ["y"])]  # fmt: skip
    m = model(nodes, [1, c, 6, 10], [1, c, 6, 10], inits)
    folded = fold_batch_norms(m)
    assert [n.op_type for n in folded.graph.node] == ["Mul", "Add", "Relu"]
    assert {t.name for t in folded.graph.initializer} == {"n.bn_scale", "n.bn_shift"}  # the old parameters dropped
    x = rng.standard_normal([1, c, 6, 10]).astype(np.float32)
    want = ort_run(m, x)
    np.testing.assert_allclose(ort_run(folded, x), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tvm_run(folded, x), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"])
@pytest.mark.parametrize(("size", "out"), [((7, 9), (56, 40)), ((28, 28), (224, 224)), ((16, 12), (5, 6))])
def test_a_separable_resize_matches_onnx_runtime(mode, size, out):
    x = np.random.default_rng(1).standard_normal([1, 3, *size]).astype(np.float32)
    inits = {"sizes": np.array([1, 3, *out], np.int64)}
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="linear",
                            coordinate_transformation_mode=mode)  # fmt: skip
    m = model([node], [1, 3, *size], [1, 3, *out], inits)
    target = tvm_target(load_target("host"))
    _, replaced = replace_resizes(import_onnx(m, list(x.shape)), vector_lanes(target))
    assert replaced == 1
    np.testing.assert_allclose(tvm_run(m, x), ort_run(m, x), rtol=1e-5, atol=1e-5)


def test_values_computed_from_shapes_become_constants():
    """TensorFlow-style "same" padding: Pad sizes computed from the input's shape at run time."""
    inits = {"two": np.array([2], np.int64), "zero": np.array([0], np.int64), "idx": np.array(3, np.int64)}
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "idx"], ["w"], axis=0),
             helper.make_node("Unsqueeze", ["w", "zero"], ["w1"]),
             helper.make_node("Mod", ["w1", "two"], ["odd"]),
             helper.make_node("Concat", ["zero", "zero", "zero", "zero", "zero", "zero", "zero", "odd"], ["pads"],
                              axis=0),
             helper.make_node("Pad", ["x", "pads"], ["p"]),
             helper.make_node("Relu", ["p"], ["y"])]  # fmt: skip
    m = model(nodes, [1, 2, 4, 5], [1, 2, 4, 6], inits)
    x = np.random.default_rng(2).standard_normal([1, 2, 4, 5]).astype(np.float32)
    frozen = freeze_shapes(m, x)
    assert [n.op_type for n in frozen.graph.node] == ["Pad", "Relu"]
    np.testing.assert_array_equal(ort_run(frozen, x), ort_run(m, x))
    np.testing.assert_allclose(tvm_run(frozen, x), ort_run(m, x), rtol=1e-6)


def test_a_zero_pad_before_convolutions_is_folded_into_their_padding():
    """TensorFlow-style "same" padding of a strided depthwise convolution: asymmetric."""
    rng = np.random.default_rng(3)
    inits = {"pads": np.array([0, 0, 0, 1, 0, 0, 1, 2], np.int64), "w": rng.standard_normal([4, 1, 3, 3]),
             "w2": rng.standard_normal([4, 4, 1, 1])}  # fmt: skip
    inits = {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in inits.items()}
    nodes = [helper.make_node("Pad", ["x", "pads"], ["p"]),
             helper.make_node("Conv", ["p", "w"], ["c"], group=4, strides=[2, 2], pads=[1, 0, 0, 0]),
             helper.make_node("Conv", ["p", "w2"], ["d"]),
             helper.make_node("Slice", ["d", "starts", "ends", "axes"], ["e"]),
             helper.make_node("Add", ["c", "e"], ["y"])]  # fmt: skip
    inits |= {"starts": np.array([0, 0], np.int64), "ends": np.array([4, 4], np.int64),
              "axes": np.array([2, 3], np.int64)}  # fmt: skip
    m = model(nodes, [1, 4, 8, 7], [1, 4, 4, 4], inits)
    x = rng.standard_normal([1, 4, 8, 7]).astype(np.float32)
    folded = fold_pads(m)
    assert [n.op_type for n in folded.graph.node] == ["Conv", "Conv", "Slice", "Add"]
    assert [list(a.ints) for a in folded.graph.node[0].attribute if a.name == "pads"] == [[1, 1, 1, 2]]
    np.testing.assert_allclose(ort_run(folded, x), ort_run(m, x), rtol=1e-6)
    np.testing.assert_allclose(tvm_run(folded, x), ort_run(m, x), rtol=1e-5, atol=1e-6)


def test_a_pad_something_else_reads_stays():
    inits = {"pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "w": np.ones([2, 2, 1, 1], np.float32)}
    nodes = [helper.make_node("Pad", ["x", "pads"], ["p"]), helper.make_node("Conv", ["p", "w"], ["c"]),
             helper.make_node("Add", ["c", "p"], ["y"])]  # fmt: skip
    m = model(nodes, [1, 2, 3, 3], [1, 2, 5, 5], inits)
    assert [n.op_type for n in fold_pads(m).graph.node] == ["Pad", "Conv", "Add"]


def test_an_operator_the_importer_refuses_is_named_with_its_layer():
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Det", ["r"], ["y"], name="head/det")]
    m = model(nodes, [1, 2, 3, 3], [1, 2], {})
    with pytest.raises(UserError, match=r"TVM's ONNX importer refused the model \(layer head/det, op Det\)"):
        import_onnx(m, [1, 2, 3, 3])


def test_a_batch_norm_of_a_vector_is_left_alone():
    """BatchNorm1d after a Linear: (N, C), not NCHW; its per-channel scale would not broadcast."""
    c = 3
    inits = {k: np.ones(c, np.float32) for k in ("g", "b", "m", "v")}
    m = model([helper.make_node("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"])], [2, c], [2, c], inits)
    assert [n.op_type for n in fold_batch_norms(m).graph.node] == ["BatchNormalization"]
