"""The graph a checkpoint carries: prune exports the pruned, extracted model to ONNX and checks
it against PyTorch; compile and verify read it back, so they never need the workload's code.

An image model is exported with dynamic height and width and checked at its own size and at
twice that size; if it does not hold at the second size (a model that turns its input's size
into constants), it is exported again at its own size and marked ``fixed``. A model the
exporter refuses gets no graph and the checkpoint records why.

A carried graph is read like any file from elsewhere (:func:`read_graph`): the recorded sha256,
the ONNX checker, standard operators only (no custom domain, no model-local function), no
external data (a path that would make the runtime read another file), one input, and an output
per task.

Usage::

    carried = carry_graph(masked_model, workload_inputs, ["seg", "depth"])   # at prune
    graph, info = ckpt.carried_graph()                                        # at compile
    dense = at_size(graph, info, (224, 224), meta.model)
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
from collections.abc import Iterator

import numpy as np
import onnx
import onnxruntime as ort
import torch
from google.protobuf.message import DecodeError, Message  # type: ignore[import-untyped]
from onnx import TensorProto
from torch import Tensor, nn

from edgeprune.contracts.checkpoint import GraphInfo
from edgeprune.errors import UserError, named, one_line
from edgeprune.graph.export import dense_onnx
from edgeprune.graph.inputs import resized

CARRIED_INPUTS = 8  # calibration inputs a checkpoint carries for compile and verify
# How close the exported graph must be to PyTorch, relative to each output's largest magnitude.
RELATIVE_TOLERANCE = 1e-3


@dataclasses.dataclass(frozen=True)
class Carried:
    """What prune stores beside the weights: the graph (``None`` when the model could not be
    exported, ``reason`` saying why) and the inputs it was checked on."""

    onnx: bytes | None
    info: GraphInfo | None
    reason: str | None
    inputs: Tensor


def run_graph(model: onnx.ModelProto | bytes, x: np.ndarray, threads: int = 1) -> list[np.ndarray]:
    """The graph's outputs on ``x`` with stock ONNX Runtime (CPU)."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    raw = model if isinstance(model, bytes) else model.SerializeToString()
    sess = ort.InferenceSession(raw, so, providers=["CPUExecutionProvider"])
    return list(sess.run(None, {sess.get_inputs()[0].name: x}))


def _mismatch(proto: onnx.ModelProto, model: nn.Module, x: Tensor, tasks: list[str]) -> str | None:
    """None if the graph reproduces ``model`` on ``x``, else what went wrong, in one line."""
    try:
        got = run_graph(proto, x.numpy())
    except Exception as exc:  # noqa: BLE001 - any runtime failure means "does not hold here"
        return f"ONNX Runtime fails at {'x'.join(map(str, x.shape[1:]))}: {one_line(exc)}"
    with torch.no_grad():
        want = model(x)
    for task, out in zip(tasks, got, strict=True):
        ref = want[task].numpy()
        scale = max(float(np.abs(ref).max()), 1e-6) if ref.size else 1.0
        if out.shape != ref.shape or float(np.abs(out - ref).max()) > RELATIVE_TOLERANCE * scale:
            return f"output {task} differs from PyTorch at {'x'.join(map(str, x.shape[1:]))}"
    return None


def _runs_in_torch(model: nn.Module, x: Tensor) -> bool:
    try:  # an FX-traced module prints the failing line to stderr itself: not news for the user here
        with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
            model(x)
    except Exception:  # noqa: BLE001 - the user's model failing at a size means it does not run there
        return False
    return True


def carry_graph(model: nn.Module, inputs: Tensor, tasks: list[str]) -> Carried:
    """Export ``model`` (eval mode, masks applied) and check the graph on ``inputs`` (the first
    :data:`CARRIED_INPUTS` calibration inputs at the workload's size)."""
    model = model.eval()
    x = inputs[:2].float()
    shape = list(x.shape[1:])
    image = x.dim() == 4
    if image:
        double = resized(x[:1], (2 * x.shape[2], 2 * x.shape[3]))
        try:
            proto = dense_onnx(model, x, tasks, any_size=True)
        except UserError:
            proto = None
        if proto is not None and _mismatch(proto, model, x, tasks) is None and (
            _runs_in_torch(model, double) and _mismatch(proto, model, double, tasks) is None
        ):
            return _carried(proto, "any", shape, inputs)
    try:
        proto = dense_onnx(model, x, tasks)
    except UserError as exc:
        return Carried(None, None, one_line(exc), inputs)
    problem = _mismatch(proto, model, x, tasks)
    if problem is not None:
        return Carried(None, None, f"the exported ONNX graph does not reproduce the model ({problem})", inputs)
    return _carried(proto, "fixed", shape, inputs)


def _carried(proto: onnx.ModelProto, sizes: str, shape: list[int], inputs: Tensor) -> Carried:
    raw = proto.SerializeToString()
    info = GraphInfo(sizes=sizes, input=shape, sha256=hashlib.sha256(raw).hexdigest())  # type: ignore[arg-type]
    return Carried(raw, info, None, inputs)


def read_graph(
    raw: bytes | None, info: GraphInfo | None, reason: str | None, tasks: list[str], example: np.ndarray, where: str
) -> tuple[onnx.ModelProto, GraphInfo]:
    """The carried graph, checked (see the module's docstring) and run once on ``example`` (a
    carried input); anything wrong is one :class:`UserError` line naming ``where`` (the
    checkpoint). The sha256 was compared when the checkpoint was loaded."""
    if raw is None or info is None:
        why = f" ({reason})" if reason else ""
        raise UserError(f"{where} carries no model graph{why}; compile and verify need one")
    try:
        proto = onnx.load_from_string(raw)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise UserError(f"{where}: the model graph is not valid ONNX ({one_line(exc)})") from None
    domains = {o.domain for o in proto.opset_import} - {"", "ai.onnx"}
    if domains or proto.functions:
        what = f"operator domain {named(sorted(domains)[0])}" if domains else "model-local functions"
        raise UserError(f"{where}: the model graph uses {what}; a carried graph has standard operators only")
    outside = _outside_data(proto)
    if outside is not None:
        raise UserError(f"{where}: the model graph {outside}; a carried graph holds plain tensors of its own")
    try:
        onnx.checker.check_model(proto)
    except (onnx.checker.ValidationError, ValueError, RuntimeError) as exc:
        raise UserError(f"{where}: the model graph fails the ONNX checker ({one_line(exc)})") from None
    inputs = list(proto.graph.input)
    outputs = [o.name for o in proto.graph.output]
    if len(inputs) != 1 or outputs != tasks:
        raise UserError(f"{where}: the model graph has {len(inputs)} inputs and outputs {[named(o) for o in outputs]}; "
                        f"the checkpoint's model has 1 input and outputs {tasks}")  # fmt: skip
    dims = inputs[0].type.tensor_type.shape.dim
    if len(dims) != len(info.input) + 1:
        raise UserError(f"{where}: the model graph's input has {len(dims)} dimensions; the metadata says "
                        f"{len(info.input) + 1}")  # fmt: skip
    try:
        run_graph(proto, example)
    except Exception as exc:  # noqa: BLE001 - whatever ONNX Runtime refuses, the file is at fault
        raise UserError(f"{where}: the model graph does not run on the inputs the checkpoint carries "
                        f"({one_line(exc)})") from None  # fmt: skip
    return proto, info


def _messages(message: Message) -> Iterator[Message]:
    """``message`` and every message inside it, at any depth (subgraphs, attributes, functions)."""
    stack = [message]
    while stack:
        m = stack.pop()
        yield m
        for field, value in m.ListFields():
            if isinstance(value, Message):
                stack.append(value)
            elif field.type == field.TYPE_MESSAGE:  # a repeated field of messages
                stack.extend(value)


def _outside_data(proto: onnx.ModelProto) -> str | None:
    """Why the graph would make the runtime read data from elsewhere, or None: a tensor stored
    as external data (a path, taken relative to the working directory when the model is loaded
    from bytes) or a sparse tensor (whose parts are tensors of their own); the exporter writes
    neither."""
    for m in _messages(proto):
        if isinstance(m, onnx.SparseTensorProto):
            return "holds a sparse tensor"
        if isinstance(m, TensorProto) and (m.data_location == TensorProto.EXTERNAL or len(m.external_data)):
            return "refers to external data files"
    return None


def at_size(graph: onnx.ModelProto, info: GraphInfo, size: tuple[int, int] | None, model: str) -> onnx.ModelProto:
    """A copy of ``graph`` whose input has height and width ``size`` (default: the exported
    size), the batch dimension left free. A ``fixed`` graph takes only its own size."""
    own = (info.input[1], info.input[2]) if len(info.input) == 3 else None
    if size is None or own is None:
        if size is not None:
            raise UserError(f"--input-size applies to image models; model {model} takes inputs of shape "
                            f"{'x'.join(map(str, info.input))}, not channels x height x width")  # fmt: skip
        return graph
    if info.sizes == "fixed" and tuple(size) != own:
        raise UserError(f"input size {size[0]}x{size[1]}: model {model} runs only at {own[0]}x{own[1]} (its graph "
                        "fixes the input size: the model turns the size of its input into constants)")  # fmt: skip
    out = onnx.ModelProto()
    out.CopyFrom(graph)
    dims = out.graph.input[0].type.tensor_type.shape.dim
    for axis, value in ((2, size[0]), (3, size[1])):
        dims[axis].Clear()
        dims[axis].dim_value = value
    return out
