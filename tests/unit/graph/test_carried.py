"""edgeprune.graph: the graph prune exports into a checkpoint holds at other sizes or is marked
fixed; a carried graph from elsewhere is refused, one line, unless it is plain standard ONNX
that runs; compile's input-size checks work on it."""

import hashlib

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from edgeprune.contracts.checkpoint import GraphInfo
from edgeprune.errors import UserError
from edgeprune.export.input_size import check_input_size
from edgeprune.graph.carried import at_size, carry_graph, read_graph, run_graph
from edgeprune.graph.export import dense_onnx


class Dense(nn.Module):
    """An image model that runs at any size of at least 5x5 (a 5x5 convolution, no padding)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 5)
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x):
        y = torch.relu(self.bn(self.conv(x)))
        return {"a": y, "b": y.mean(dim=(2, 3))}


class Flat(nn.Module):
    """Flattens its feature map into a Linear layer: runs at its own size alone."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 2)

    def forward(self, x):
        return {"a": self.fc(torch.relu(self.conv(x)).flatten(1))}


class Unexportable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(2)

    def forward(self, x):
        return {"a": self.pool(x)}  # 7x7 to 2x2: not a factor, which ONNX cannot express


def _carried(model, shape, tasks):
    torch.manual_seed(0)
    return carry_graph(model.eval(), torch.randn(4, *shape), tasks)


def _read(carried, tasks):
    return read_graph(carried.onnx, carried.info, carried.reason, tasks, carried.inputs[:1].numpy(), "c.ept")


def test_an_image_model_that_takes_any_size_is_carried_with_free_height_and_width():
    model = Dense().eval()
    carried = _carried(model, (3, 16, 16), ["a", "b"])
    assert carried.info is not None and carried.info.sizes == "any" and carried.info.input == [3, 16, 16]
    assert carried.info.sha256 == hashlib.sha256(carried.onnx).hexdigest()
    graph, info = _read(carried, ["a", "b"])
    x = torch.randn(2, 3, 24, 20)
    got = run_graph(at_size(graph, info, (24, 20), "dense"), x.numpy())
    with torch.no_grad():
        want = model(x)
    np.testing.assert_allclose(got[0], want["a"].numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got[1], want["b"].numpy(), rtol=1e-4, atol=1e-5)


def test_a_model_that_fixes_its_size_is_carried_fixed_and_other_sizes_are_refused():
    carried = _carried(Flat(), (3, 8, 8), ["a"])
    assert carried.info is not None and carried.info.sizes == "fixed"
    graph, info = _read(carried, ["a"])
    assert at_size(graph, info, (8, 8), "flat").graph.input[0].type.tensor_type.shape.dim[2].dim_value == 8
    with pytest.raises(UserError, match=r"input size 16x16: model flat runs only at 8x8 \(its graph fixes"):
        at_size(graph, info, (16, 16), "flat")


def test_a_model_the_exporter_refuses_is_carried_without_a_graph_and_says_why():
    carried = _carried(Unexportable(), (3, 7, 7), ["a"])
    assert carried.onnx is None and carried.info is None
    assert carried.reason is not None and "adaptive_avg_pool2d" in carried.reason
    with pytest.raises(UserError, match=r"c.ept carries no model graph \(ONNX export failed: .*adaptive_avg_pool2d"):
        _read(carried, ["a"])


def test_export_leaves_the_model_in_eval_mode():
    """The exporter restored the wrapper's training flag onto the model (BatchNorm then used
    batch statistics: outputs changed after a compile)."""
    model = Dense().eval()
    dense_onnx(model, torch.randn(1, 3, 8, 8), ["a", "b"])
    assert not any(m.training for m in model.modules())


def _tampered(carried, edit):
    proto = onnx.load_from_string(carried.onnx)
    edit(proto)
    raw = proto.SerializeToString()
    info = GraphInfo(sizes=carried.info.sizes, input=carried.info.input, sha256=hashlib.sha256(raw).hexdigest())
    return raw, info


def _custom_domain(p):
    p.opset_import.append(helper.make_opsetid("evil.ops", 1))


def _function(p):
    p.functions.append(helper.make_function("evil.ops", "F", ["x"], ["y"], [helper.make_node("Relu", ["x"], ["y"])],
                                            [helper.make_opsetid("", 17)]))  # fmt: skip


def _external(p):
    t = p.graph.initializer[0]
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value="/etc/passwd")
    t.ClearField("raw_data")


def _sparse_external(p):
    """A sparse initializer whose values live in a file relative to the working directory (the
    checker allows a relative location)."""
    values = helper.make_tensor("sv", TensorProto.FLOAT, [1], [0.0])
    values.data_location = TensorProto.EXTERNAL
    values.external_data.add(key="location", value="secret.bin")
    values.ClearField("float_data")
    indices = helper.make_tensor("si", TensorProto.INT64, [1], [0])
    p.graph.sparse_initializer.append(helper.make_sparse_tensor(values, indices, [4]))


def _second_output(p):
    p.graph.output.append(helper.make_tensor_value_info("x2", TensorProto.FLOAT, ["batch", 3, 8, 8]))
    p.graph.node.append(helper.make_node("Identity", [p.graph.input[0].name], ["x2"]))


def _wrong_weight(p):
    w = p.graph.initializer[0]
    arr = onnx.numpy_helper.to_array(w).reshape(-1)
    w.CopyFrom(onnx.numpy_helper.from_array(arr, w.name))  # a conv weight flattened: passes the checker


@pytest.mark.parametrize(("edit", "message"), [
    (_custom_domain, "uses operator domain evil.ops; a carried graph has standard operators only"),
    (_function, "uses model-local functions"),
    (_external, "refers to external data files"),
    (_sparse_external, "holds a sparse tensor"),
    (_second_output, "has 1 inputs and outputs ['a', 'x2']"),
    (_wrong_weight, "does not run on the inputs the checkpoint carries"),
], ids=["custom domain", "function", "external data", "sparse external", "outputs", "does not run"])  # fmt: skip
def test_a_tampered_graph_is_refused_in_one_line(edit, message):
    carried = _carried(Flat(), (3, 8, 8), ["a"])
    raw, info = _tampered(carried, edit)
    with pytest.raises(UserError) as exc:
        read_graph(raw, info, None, ["a"], carried.inputs[:1].numpy(), "c.ept")
    assert message in str(exc.value) and str(exc.value).startswith("c.ept: ") and "\n" not in str(exc.value)


def test_bytes_that_are_not_onnx_are_refused():
    carried = _carried(Flat(), (3, 8, 8), ["a"])
    with pytest.raises(UserError, match="c.ept: the model graph is not valid ONNX"):
        read_graph(b"\xff" * 64, carried.info, None, ["a"], carried.inputs[:1].numpy(), "c.ept")


def test_input_sizes_are_checked_on_the_carried_graph():
    carried = _carried(Dense(), (3, 16, 16), ["a", "b"])
    graph, info = _read(carried, ["a", "b"])
    native = carried.inputs[:1].numpy()
    check_input_size(graph, info, "dense", native, (5, 40))  # the smallest height it takes
    small = r"input size 3x3 is too small for model dense \(the smallest that runs is 5x5\)"
    with pytest.raises(UserError, match=small):
        check_input_size(graph, info, "dense", native, (3, 3))
    with pytest.raises(UserError, match="input size 99999x99999 is too large for model dense: it needs about"):
        check_input_size(graph, info, "dense", native, (99999, 99999))
