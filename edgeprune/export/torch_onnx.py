"""The dense ONNX of an extracted model: standard ops, BatchNorm folded into the convolutions
by the exporter, one named output per task. This is both the dense baseline that travels
in the artifact and the graph the sparse rewrite starts from."""

from __future__ import annotations

import io
import warnings

import onnx
import torch
from torch import Tensor, nn

from edgeprune.errors import UserError
from edgeprune.export.sparse_ops import OPSET

IR_VERSION = 10  # onnx 1.23 writes 14 by default, which onnxruntime 1.31 refuses


class _TaskTuple(nn.Module):
    """The model's task dict as a tuple in a fixed order (ONNX outputs are positional)."""

    def __init__(self, model: nn.Module, tasks: list[str]) -> None:
        super().__init__()
        self.model = model
        self.tasks = tasks

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        out = self.model(x)
        return tuple(out[t] for t in self.tasks)


def dense_onnx(model: nn.Module, example: Tensor, tasks: list[str], input_name: str = "input") -> onnx.ModelProto:
    """Export ``model`` (eval mode) with a dynamic batch dimension."""
    buf = io.BytesIO()
    axes = {input_name: {0: "batch"}, **{t: {0: "batch"} for t in tasks}}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(_TaskTuple(model.eval(), tasks), (example,), buf, input_names=[input_name],
                              output_names=tasks, dynamic_axes=axes, opset_version=OPSET, dynamo=False,
                              do_constant_folding=True)  # fmt: skip
    except Exception as exc:  # the exporter's own message names the op it cannot export
        raise UserError(f"ONNX export failed: {str(exc).splitlines()[0]}") from None
    proto = onnx.load_from_string(buf.getvalue())
    proto.ir_version = IR_VERSION
    return proto
