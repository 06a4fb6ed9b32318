"""Task extraction: keep only the requested outputs and the layers they need.

The model is traced with ``torch.fx``; its output dict is cut down to the requested tasks and
dead code elimination removes every layer that no longer feeds an output, so the extracted
model neither computes nor stores the dropped heads. Parameter names stay those of the source
model, so weights and masks map one to one.

Usage::

    small = extract_tasks(model, ["seg", "depth"])
    small(x).keys()   # {"seg", "depth"}
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.fx
from torch import nn

from edgeprune.errors import UserError


class _LayerTracer(torch.fx.Tracer):
    """Keeps every conv and linear layer a leaf, subclasses from other packages included
    (EfficientNet's same-padding convs), so the extracted model still holds them as layers."""

    LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, self.LAYERS) or super().is_leaf_module(
            m, module_qualified_name
        )


def extract_tasks(model: nn.Module, tasks: Sequence[str]) -> torch.fx.GraphModule:
    """A traced copy of ``model`` whose forward returns only ``tasks``."""
    try:
        gm = torch.fx.GraphModule(model, _LayerTracer().trace(model), type(model).__name__)
    except Exception as exc:  # fx raises many types; all mean "not traceable"
        raise UserError(f"cannot extract tasks: the model is not traceable by torch.fx ({exc})") from None
    output = next(n for n in gm.graph.nodes if n.op == "output")
    result = output.args[0]
    if not isinstance(result, dict):
        raise UserError("cannot extract tasks: the traced forward does not return a dict literal")
    if not tasks:
        raise UserError(f"the task list is empty; the model has: {', '.join(result)}")
    unknown = [t for t in tasks if t not in result]
    if unknown:
        raise UserError(f"unknown task(s) {', '.join(unknown)}; the model has: {', '.join(result)}")
    output.args = ({t: result[t] for t in tasks},)
    gm.graph.eliminate_dead_code()
    gm.delete_all_unused_submodules()
    gm.recompile()
    gm.train(model.training)
    return gm


def output_layers(model: nn.Module) -> set[str]:
    """Weights of the layers whose outputs reach a model output with no other conv or linear
    layer in between (their filters are the task outputs: never prune them whole). Empty for a
    model that is not a ``torch.fx.GraphModule``."""
    if not isinstance(model, torch.fx.GraphModule):
        return set()
    modules = dict(model.named_modules())
    output = next(n for n in model.graph.nodes if n.op == "output")
    found: set[str] = set()
    stack, seen = list(output.all_input_nodes), set()
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if node.op == "call_module" and isinstance(modules[node.target], _LayerTracer.LAYERS):
            found.add(f"{node.target}.weight")
            continue
        stack.extend(node.all_input_nodes)
    return found
