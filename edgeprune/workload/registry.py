"""Resolving ``--workload``: a built-in name, ``path/to/file.py:attribute`` or ``module:attribute``.

A checkpoint records the reference it was pruned with, a file path made absolute
(:func:`workload_reference`). :func:`checkpoint_workload` resolves a recorded built-in name from
edgeprune's own table; a recorded file or module is never imported (a checkpoint from someone
else must not run code): the user passes ``--workload``, and the recorded reference is shown as
a hint.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

from torch import nn

from edgeprune.errors import UserError, show
from edgeprune.workload import digits, pool, scenes
from edgeprune.workload.base import Workload
from edgeprune.workload.weights import load_state, read_state

BUILTIN: dict[str, Callable[[], Workload]] = {
    "scenes": scenes.make_workload, "digits": digits.make_workload, "digit-pool": pool.make_workload,
}  # fmt: skip


def _load_attribute(spec: str) -> object:
    target, _, attr = spec.rpartition(":")
    file_ref = _split_file_reference(spec)
    if file_ref is not None:
        path = file_ref[0]
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


def _split_file_reference(spec: str) -> tuple[Path, str] | None:
    """``(path, attribute)`` of a ``FILE.py:ATTR`` reference, else ``None``."""
    target, sep, attr = spec.rpartition(":")
    return (Path(target), attr) if sep and target.endswith(".py") else None


def workload_reference(spec: str) -> str:
    """The reference to record for ``spec``: a ``FILE.py:ATTR`` path made absolute (so the
    checkpoint works from another directory); built-in names and ``MODULE:ATTR`` unchanged."""
    file_ref = _split_file_reference(spec)
    if file_ref is None:
        return spec
    path, attr = file_ref
    return f"{path.resolve()}:{attr}"


def checkpoint_workload(recorded: str, override: str | None = None) -> Workload:
    """The workload of a checkpoint: ``override`` (the user's ``--workload``) if given, else the
    built-in workload the checkpoint names. Any other recorded reference is a
    :class:`UserError` that asks for ``--workload`` and offers the reference as a hint: it is
    text from a file, and importing it would run whatever code it names."""
    if override is not None:
        return resolve_workload(override)
    if recorded in BUILTIN:
        return BUILTIN[recorded]()
    hint = recorded if recorded.isprintable() and len(recorded) <= 300 else show(recorded)
    raise UserError(
        f"the checkpoint was pruned with the workload '{hint}', which is not built in; edgeprune never "
        "imports code a checkpoint names: pass --workload to say which workload to use (that reference, if you "
        "trust it, or where that workload is now)"
    )


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
