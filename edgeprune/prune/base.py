"""The pruning interface and the method registry.

A method is a :class:`Pruner`: ``prune(ctx, sparsity) -> MaskSet``. It is registered with the
options it accepts (and their defaults); the CLI passes only the options a user gave, and an
option that does not apply to the method is an error, not silently ignored.

Usage::

    pruner = make_pruner("magnitude", {"scope": "global"})
    masks = pruner.prune(ctx, 0.9)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from edgeprune.errors import UserError
from edgeprune.masks import MaskSet
from edgeprune.prune.context import PruneContext


class Pruner(Protocol):
    def prune(self, ctx: PruneContext, sparsity: float) -> MaskSet: ...


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """A registered method: its name, one-line summary, options with defaults, and factory."""

    name: str
    summary: str
    options: Mapping[str, Any]
    build: Callable[..., Pruner]
    fixed_sparsity: Callable[[Mapping[str, Any]], float | None] = lambda _opts: None
    finetune_defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # e.g. {"lr": 1e-5}


REGISTRY: dict[str, MethodSpec] = {}


def register(spec: MethodSpec) -> MethodSpec:
    REGISTRY[spec.name] = spec
    return spec


def method_spec(name: str) -> MethodSpec:
    _load_builtin_methods()
    if name not in REGISTRY:
        raise UserError(f"unknown method '{name}'; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def resolve_options(name: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The method's defaults overridden by ``given``; a foreign option is a :class:`UserError`."""
    spec = method_spec(name)
    foreign = sorted(k for k in given if k not in spec.options)
    if foreign:
        accepted = ", ".join(f"--{k.replace('_', '-')}" for k in spec.options) or "none"
        raise UserError(
            f"option {', '.join('--' + k.replace('_', '-') for k in foreign)} does not apply to method "
            f"'{name}' (it takes: {accepted})"
        )
    return {**spec.options, **given}


def make_pruner(name: str, given: Mapping[str, Any]) -> Pruner:
    return method_spec(name).build(**resolve_options(name, given))


def _load_builtin_methods() -> None:
    from edgeprune.prune import adapmtl, baselines, cut, smsp, snip  # noqa: F401  (register on import)
