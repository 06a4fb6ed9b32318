"""PyTorch to ONNX: the dense graph of an extracted model in standard ops, BatchNorm folded into
the convolutions by the exporter, one named output per task. prune carries it in the checkpoint
(:mod:`edgeprune.graph.carried`); compile makes it the artifact's dense baseline and the graph
the sparse rewrite starts from."""

from __future__ import annotations

import io
import re
import warnings

import onnx
import torch
from torch import Tensor, nn

from edgeprune.errors import UserError
from edgeprune.graph.onnx_version import IR_VERSION, OPSET


class _TaskTuple(nn.Module):
    """The model's task dict as a tuple in a fixed order (ONNX outputs are positional)."""

    def __init__(self, model: nn.Module, tasks: list[str]) -> None:
        super().__init__()
        self.model = model
        self.tasks = tasks

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        out = self.model(x)
        return tuple(out[t] for t in self.tasks)


def dense_onnx(
    model: nn.Module, example: Tensor, tasks: list[str], *, any_size: bool = False, input_name: str = "input"
) -> onnx.ModelProto:
    """Export ``model`` (eval mode) with a dynamic batch dimension and, with ``any_size``, dynamic
    height and width too (an image model's; whether the graph really runs at other sizes is for
    the caller to check: a model may turn its input's size into constants)."""
    buf = io.BytesIO()
    first = {0: "batch", 2: "height", 3: "width"} if any_size else {0: "batch"}
    axes = {input_name: first, **{t: {0: "batch"} for t in tasks}}
    # The exporter restores the training flag of the module it is given, recursively: the wrapper
    # must be in eval mode too, or the model is left in training mode after the export.
    wrapper = _TaskTuple(model, tasks).eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            # The TorchScript exporter (dynamo=False) writes to a file object; its annotation names paths only.
            torch.onnx.export(wrapper, (example,), buf, input_names=[input_name],  # type: ignore[arg-type]
                              output_names=tasks, dynamic_axes=axes, opset_version=OPSET, dynamo=False,
                              do_constant_folding=True)  # fmt: skip
    except Exception as exc:  # the exporter's own message names the op it cannot export
        raise UserError(_export_error(model, str(exc))) from None
    proto = onnx.load_from_string(buf.getvalue())
    proto.ir_version = IR_VERSION
    return proto


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _export_error(model: nn.Module, message: str) -> str:
    """One line naming the op the exporter refused and the layers that run it."""
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    why = re.sub(r"\s*Please feel free.*$", "", first.split(" [Caused by")[0])
    op = re.search(r"operator:? ?'?([A-Za-z_0-9:]+)", first)
    if op is None:
        return f"ONNX export failed: {why}"
    name = op.group(1).split("::")[-1]
    layers = [n for n, m in model.named_modules() if n and _snake(type(m).__name__) == name]
    where = f" in layer {', '.join(layers[:3])} ({type(model.get_submodule(layers[0])).__name__})" if layers else ""
    return f"ONNX export failed: op {name}{where}: {why}"
