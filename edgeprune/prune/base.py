"""The pruning interface: a method is a :class:`Pruner`, ``prune(ctx, sparsity) -> MaskSet``.

Which methods exist, their options and defaults are in :mod:`edgeprune.prune.registry`.

Usage::

    pruner = make_pruner("magnitude", {"scope": "global"})
    masks = pruner.prune(ctx, 0.9)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from edgeprune.masks import MaskSet
from edgeprune.prune.context import PruneContext
from edgeprune.prune.registry import method_spec, resolve_options


class Pruner(Protocol):
    def prune(self, ctx: PruneContext, sparsity: float) -> MaskSet: ...


def make_pruner(name: str, given: Mapping[str, Any]) -> Pruner:
    """The method ``name`` with its defaults overridden by ``given`` (a foreign option is a
    :class:`~edgeprune.errors.UserError`)."""
    pruner: Pruner = method_spec(name).build(resolve_options(name, given))
    return pruner
