"""Resolving ``--workload``: a built-in name, ``path/to/file.py:attribute`` or ``module:attribute``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

from torch import nn

from edgeprune.errors import UserError
from edgeprune.workload import digits, pool, scenes
from edgeprune.workload.base import Workload
from edgeprune.workload.weights import load_state, read_state

BUILTIN: dict[str, Callable[[], Workload]] = {
    "scenes": scenes.make_workload, "digits": digits.make_workload, "digit-pool": pool.make_workload,
}  # fmt: skip


def _load_attribute(spec: str) -> object:
    target, _, attr = spec.rpartition(":")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise UserError(f"workload file not found: {path}")
        module_name = f"edgeprune_user_workload_{abs(hash(path.resolve()))}"
        mod_spec = importlib.util.spec_from_file_location(module_name, path)
        if mod_spec is None or mod_spec.loader is None:
            raise UserError(f"cannot import workload file {path}")
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[module_name] = module
        mod_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise UserError(f"cannot import workload module '{target}': {exc}") from None
    if not hasattr(module, attr):
        raise UserError(f"workload '{target}' has no attribute '{attr}'")
    return getattr(module, attr)


def resolve_workload(spec: str) -> Workload:
    """A built-in workload by name, or a user's ``Workload`` (or a function returning one)."""
    if ":" not in spec:
        if spec not in BUILTIN:
            raise UserError(f"unknown workload '{spec}'; built-in: {', '.join(BUILTIN)} (or FILE.py:ATTR, MODULE:ATTR)")
        return BUILTIN[spec]()
    obj = _load_attribute(spec)
    if callable(obj) and not isinstance(obj, Workload):
        obj = obj()
    if not isinstance(obj, Workload):
        raise UserError(f"'{spec}' is a {type(obj).__name__}, not an edgeprune.workload.Workload")
    return obj


def build_model(workload: Workload, model: str | None = None, weights: str | Path | None = None) -> nn.Module:
    """Build ``model`` (default: the workload's first) and load its weights (the shipped
    pre-trained ones unless ``weights`` names a safetensors file), in eval mode, float32."""
    name = model or workload.default_model
    if name not in workload.models:
        raise UserError(f"unknown model '{name}' for workload '{workload.name}'; known: {', '.join(workload.models)}")
    spec = workload.models[name]
    net = spec.build().float()
    source = weights if weights is not None else spec.weights
    if source is None:
        raise UserError(f"model '{name}' has no pre-trained weights; pass --weights FILE.safetensors")
    load_state(net, read_state(source), f"weights {source}")
    return net.eval()
