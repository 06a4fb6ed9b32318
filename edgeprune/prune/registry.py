"""Every pruning method in one table: name, summary, options with defaults, and where its code is.

The table is plain data and imports nothing heavy, so the CLI lists the methods in ``--help``
without PyTorch. A method's code (``factory``, a ``"module:attribute"`` reference) is imported
only when the method is built; method modules do not register themselves. The CLI passes only
the options a user gave, and an option that does not apply to the method is an error, not
silently ignored.

Usage::

    spec = method_spec("cut")                          # MethodSpec(name="cut", summary=..., ...)
    options = resolve_options("cut", {"fusion": "vote"})
    pruner = spec.build(options)                       # imports edgeprune.prune.cut on use
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from edgeprune.errors import UserError
from edgeprune.plugins import load_reference


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """A method: its name, one-line summary, options with defaults, and factory.

    ``factory`` and ``fixed_sparsity`` are ``"module:attribute"`` references: the factory is
    called with the resolved options as keywords and returns a pruner; ``fixed_sparsity``, if
    set, returns the sparsity those options fix (N:M) or ``None``. ``finetune_defaults`` are the
    fine-tuning settings the method recommends (e.g. ``{"lr": 1e-5}``)."""

    name: str
    summary: str
    options: Mapping[str, Any]
    factory: str
    fixed_sparsity: str | None = None
    finetune_defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def build(self, options: Mapping[str, Any]) -> Any:  # noqa: ANN401 - a Pruner (prune/base.py)
        """The pruner for fully resolved ``options`` (see :func:`resolve_options`)."""
        return load_reference(self.factory)(**options)

    def sparsity_fixed_by(self, options: Mapping[str, Any]) -> float | None:
        """The sparsity these resolved options fix, or ``None`` when the user chooses it."""
        return None if self.fixed_sparsity is None else load_reference(self.fixed_sparsity)(options)


_ADAPMTL_OPTIONS = {"train_steps": 1000, "train_batch_size": 16, "train_lr": 1e-4, "threshold_lr": 2e-3,
                    "threshold_decay": 0.0, "init_threshold": None, "window": 500, "warmup": 100, "ramp": 0.6,
                    "from_scratch": False, "granularity": "element"}  # fmt: skip
_BY_GRANULARITY = "edgeprune.prune.policy:granularity_sparsity"
_ALLOCATE = {"allocate": "method", "target": "host", "input_size": None}  # --allocate latency: the target's cost table

BUILTIN_METHODS: tuple[MethodSpec, ...] = (
    MethodSpec("adapmtl", "AdapMTL (arXiv 2408.03913): per-component learned soft thresholds, adaptive task weights",
               _ADAPMTL_OPTIONS, "edgeprune.prune.adapmtl:AdapMTLPruner", fixed_sparsity=_BY_GRANULARITY),
    MethodSpec("random", "random scores (seeded), kept by policy",
               {"granularity": "element", "scope": "layer", "seed": 0, **_ALLOCATE},
               "edgeprune.prune.baselines:random_pruner", fixed_sparsity=_BY_GRANULARITY),
    MethodSpec("magnitude", "|w| (Han et al. 2015), layer-wise or global",
               {"granularity": "element", "scope": "layer", **_ALLOCATE},
               "edgeprune.prune.baselines:magnitude_pruner", fixed_sparsity=_BY_GRANULARITY),
    MethodSpec("nm", "N:M magnitude (default 2:4) along input channels, for sparse tensor cores", {"pattern": "2:4"},
               "edgeprune.prune.baselines:nm_pruner", fixed_sparsity="edgeprune.prune.baselines:nm_sparsity"),
    MethodSpec("l1-filter", "whole filters by L1 norm (Li et al., ICLR 2017), the same share per layer",
               {"scope": "layer"}, "edgeprune.prune.baselines:l1_filter_pruner"),
    MethodSpec("cut", "CUT (arXiv 2504.09803): per-task gradient scores, per-task top-k, OR/AND/vote fusion",
               {"fusion": "or", "vote_min": None, "calib_batches": 50, "calib_batch_size": 8, "granularity": "element",
                **_ALLOCATE},
               "edgeprune.prune.cut:CUTPruner", fixed_sparsity=_BY_GRANULARITY,
               finetune_defaults={"lr": 1e-5, "steps": 1000}),
    MethodSpec("smsp", "SMSP (arXiv 2307.04365): LEEP-similar library tasks' structure scores, one structured round",
               {"mask_library": None, "top_k": 2}, "edgeprune.prune.smsp:SMSPPruner",
               finetune_defaults={"steps": 100, "lr": 1e-3}),
    MethodSpec("snip", "SNIP (Lee et al. 2019): connection sensitivity on one batch, global top-k",
               {"calib_batch_size": 32, "granularity": "element", **_ALLOCATE}, "edgeprune.prune.snip:SNIPPruner",
               fixed_sparsity=_BY_GRANULARITY),
    MethodSpec("imp", "iterative global magnitude pruning, masked fine-tuning between rounds",
               {"rounds": 3, "round_steps": 100, "granularity": "element", **_ALLOCATE},
               "edgeprune.prune.snip:IMPPruner", fixed_sparsity=_BY_GRANULARITY),
)  # fmt: skip
"""The built-in methods, in the order ``--help`` lists them (the order of earlier releases)."""

METHODS: dict[str, MethodSpec] = {spec.name: spec for spec in BUILTIN_METHODS}


def method_spec(name: str) -> MethodSpec:
    if name not in METHODS:
        raise UserError(f"unknown method '{name}'; known: {', '.join(sorted(METHODS))}")
    return METHODS[name]


def option_flag(name: str) -> str:
    """The CLI spelling of a method option: ``calib_batch_size`` -> ``--calib-batch-size``."""
    return "--" + name.replace("_", "-")


def resolve_options(name: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The method's defaults overridden by ``given``; a foreign option is a :class:`UserError`."""
    spec = method_spec(name)
    foreign = sorted(k for k in given if k not in spec.options)
    if foreign:
        accepted = ", ".join(option_flag(k) for k in spec.options) or "none"
        raise UserError(
            f"option {', '.join(option_flag(k) for k in foreign)} does not apply to method '{name}' "
            f"(it takes: {accepted})"
        )
    return {**spec.options, **given}


def method_summaries() -> str:
    """``name: summary; ...`` of every method, for ``--help``."""
    return "; ".join(f"{s.name}: {s.summary}" for s in BUILTIN_METHODS)
