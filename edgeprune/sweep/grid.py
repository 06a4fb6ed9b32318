"""The cells of a sweep: the dense model, then every method x granularity x sparsity the
configuration names, each with its settings resolved and checked before any work starts, and
a key that is the hash of exactly those settings (so a re-run finds what it has done)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from edgeprune.contracts.sweep import CellSettings, SweepConfig
from edgeprune.errors import UserError, one_line
from edgeprune.prune.pipeline import check_sparsity
from edgeprune.prune.registry import method_spec, option_flag, resolve_options

DENSE = "dense"


@dataclasses.dataclass(frozen=True)
class Cell:
    method: str  # "dense" for the unpruned model
    options: dict[str, Any]  # the method's options as given (the key holds them resolved)
    sparsity: float | None  # None: dense, or a method that fixes its own (N:M)
    settings: CellSettings  # everything that decides the cell's pruned model
    key: str

    @property
    def label(self) -> str:
        if self.method == DENSE:
            return "dense"
        gran = self.options.get("granularity")
        parts = [self.method, f"{self.sparsity:.0%}" if self.sparsity is not None else "fixed sparsity"]
        return " ".join(parts + ([str(gran)] if gran else []))


def _key(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _cell(config: SweepConfig, method: str, options: dict[str, Any], sparsity: float | None,
          resolved: dict[str, Any], finetune_steps: int | None = None) -> Cell:  # fmt: skip
    finetune = config.finetune.model_dump()
    if finetune_steps is not None:
        finetune["steps"] = finetune_steps
    # Compile and bench settings belong to each build: changing them re-runs no pruning.
    settings = CellSettings(workload=config.workload, model=config.model, tasks=config.tasks, method=method,
                            options=resolved, sparsity=sparsity, finetune=finetune if method != DENSE else None)
    return Cell(method, options, sparsity, settings, _key(settings.model_dump()))


def _check_types(resolved: dict[str, Any], defaults: Mapping[str, Any]) -> None:
    """Each option a number, a string or a boolean (TOML also has dates, tables, arrays), of its
    default's type where the default says (an int for a float is fine)."""
    for key, value in resolved.items():
        default = defaults.get(key)
        plain = isinstance(value, str | int | float | bool) or value is None
        same = default is None or value is None or type(value) is type(default) or (
            isinstance(default, float) and type(value) is int)  # fmt: skip
        if not plain or not same:
            want = type(default).__name__ if default is not None else "a number, string or boolean"
            raise UserError(f"option {option_flag(key)}: {value!r} is not {want}")


def cells(config: SweepConfig) -> list[Cell]:
    """The dense cell first, then the grid in the configuration's order; a method option that
    does not apply, a sparsity out of range or a granularity for no method is a UserError."""
    grid = [_cell(config, DENSE, {}, None, {})]
    used_granularities = False
    for method, given in config.methods.items():
        where = f"methods.{method}"
        try:
            spec = method_spec(method)
            given = dict(given)
            steps = given.pop("finetune_steps", None)  # the sweep's, not the method's: this method's budget
            if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 0):
                raise UserError(f"finetune_steps must be a whole number of steps, at least 0 (got {steps!r})")
            variants = [given]
            if config.granularities and "granularity" in spec.options and "granularity" not in given:
                variants = [{**given, "granularity": g} for g in config.granularities]
                used_granularities = True
            for options in variants:
                resolved = resolve_options(method, options)
                _check_types(resolved, spec.options)
                fixed = spec.sparsity_fixed_by(resolved)
                for sparsity in [fixed] if fixed is not None else config.sparsities:
                    check_sparsity(sparsity, method, options)
                    grid.append(_cell(config, method, options, sparsity, resolved, steps))
        except UserError as exc:
            raise UserError(f"sweep config: {where}: {one_line(exc)}") from None
    if config.granularities and not used_granularities:
        raise UserError("sweep config: granularities: none of the methods takes a granularity (or each sets its own)")
    keys = [c.key for c in grid]
    if len(set(keys)) != len(keys):
        raise UserError("sweep config: two cells have the same settings (a sparsity or a method listed twice?)")
    return grid
