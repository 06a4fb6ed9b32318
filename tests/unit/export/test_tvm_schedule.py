"""The TVM backend's schedule templates: every convolution class the models use (3x3, 1x1,
strided, dilated, depthwise, an odd width) is scheduled by a template and computes what ONNX
Runtime computes."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

tvm = pytest.importorskip("tvm", reason="needs apache-tvm (pip install -e '.[dev]')")

from edgeprune.export.backends.tvm.build import compile_module  # noqa: E402
from edgeprune.export.backends.tvm.sparse import import_onnx  # noqa: E402
from edgeprune.export.backends.tvm.target import tvm_target, vector_lanes  # noqa: E402
from edgeprune.targets import load_target  # noqa: E402


def conv_model(cin, cout, k, stride=1, dil=1, group=1, hw=14):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((cout, cin // group, k, k)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    pad = dil * (k // 2)
    out = (hw + 2 * pad - dil * (k - 1) - 1) // stride + 1
    nodes = [helper.make_node("Conv", ["x", "W", "b"], ["c"], strides=[stride] * 2, dilations=[dil] * 2,
                              pads=[pad] * 4, group=group),
             helper.make_node("Relu", ["c"], ["y"])]  # fmt: skip
    graph = helper.make_graph(nodes, "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, hw, hw])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, out, out])],
                              [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")])  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model


@pytest.mark.parametrize("conv", [
    {"cin": 16, "cout": 32, "k": 3},
    {"cin": 32, "cout": 16, "k": 1},
    {"cin": 16, "cout": 32, "k": 3, "stride": 2},
    {"cin": 16, "cout": 16, "k": 3, "dil": 2},
    {"cin": 32, "cout": 32, "k": 3, "group": 32},
    {"cin": 32, "cout": 32, "k": 3, "group": 32, "stride": 2},
    {"cin": 16, "cout": 16, "k": 5, "group": 16, "stride": 2},
    {"cin": 3, "cout": 24, "k": 3, "hw": 13},
], ids=["3x3", "1x1", "strided", "dilated", "depthwise", "depthwise-strided", "depthwise-5x5-strided",
        "odd-width"])  # fmt: skip
def test_each_convolution_class_is_scheduled_and_exact(conv):
    model = conv_model(**conv)
    onnx.checker.check_model(model)
    hw = conv.get("hw", 14)
    x = np.random.default_rng(1).standard_normal([1, conv["cin"], hw, hw]).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    target = tvm_target(load_target("host"))
    exe, _, scheduled = compile_module(import_onnx(model, list(x.shape)), target, vector_lanes(target))
    assert scheduled == 1
    got = tvm.relax.VirtualMachine(exe, tvm.cpu())["main"](tvm.runtime.tensor(x)).numpy()
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


@pytest.mark.parametrize("hw", [28, 7], ids=["plane-of-whole-vectors", "odd-plane"])
def test_an_elementwise_chain_with_per_channel_operands_is_one_vectorised_loop_and_exact(hw):
    """A batch norm after a residual add (relu(a + b) * scale + shift), as mtl-resnet's decoder has."""
    from edgeprune.export.backends.tvm.build import legalize
    from edgeprune.export.backends.tvm.schedule import schedule_elementwise

    rng = np.random.default_rng(2)
    scale, shift = (rng.standard_normal((64, 1, 1)).astype(np.float32) for _ in range(2))
    nodes = [helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("Mul", ["s", "scale"], ["m"]),
             helper.make_node("Add", ["m", "shift"], ["t"]), helper.make_node("Relu", ["t"], ["y"])]  # fmt: skip
    spec = [1, 64, hw, hw]
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, spec) for n in "ab"]
    consts = [numpy_helper.from_array(scale, "scale"), numpy_helper.from_array(shift, "shift")]
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, spec)
    graph = helper.make_graph(nodes, "ew", inputs, [output], consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    a, b = (rng.standard_normal(spec).astype(np.float32) for _ in range(2))
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"a": a, "b": b})[0]  # fmt: skip
    target = tvm_target(load_target("host"))
    mod = legalize(import_onnx(model, spec), target, vector_lanes(target))
    funcs = [f for f in mod.functions.values() if isinstance(f, tvm.tirx.PrimFunc)]
    assert funcs and all(schedule_elementwise(f, vector_lanes(target)) is not None for f in funcs)
    exe, _, _ = compile_module(import_onnx(model, spec), target, vector_lanes(target))
    vm = tvm.relax.VirtualMachine(exe, tvm.cpu())
    got = vm["main"](tvm.runtime.tensor(a), tvm.runtime.tensor(b)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
