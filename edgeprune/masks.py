"""Masks: one boolean keep-mask per prunable tensor, its granularity, and sparsity accounting.

Sparsity is always counted over the *prunable* weights (conv and linear weights by default;
biases and normalisation parameters are never pruned) and the denominator is reported with it.

Usage::

    params = prunable_parameters(model)                    # {"backbone.stem.0.weight": ...}
    masks = MaskSet({n: p.abs() > 0.01 for n, p in params.items()}, default=ELEMENT)
    masks.apply(model)                                     # zero the pruned weights in place
    report = sparsity_report(masks, graph)                 # per layer, per component, overall
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import re
from collections.abc import Iterable, Mapping
from typing import cast

import torch
from torch import Tensor, nn

from edgeprune.errors import UserError
from edgeprune.taskgraph.graph import TaskGraph

LAYER_TYPES: dict[str, tuple[type[nn.Module], ...]] = {
    "conv": (nn.Conv1d, nn.Conv2d, nn.Conv3d),
    "linear": (nn.Linear,),
}


@dataclasses.dataclass(frozen=True)
class Granularity:
    """How weights are grouped when pruned: ``element``, ``block`` (r x c over the weight seen
    as out x (in*kh*kw)), ``nm`` (N of every M consecutive input channels kept, as sparse
    tensor cores need) or ``channel`` (whole output filters)."""

    kind: str
    a: int = 1  # block rows, or N
    b: int = 1  # block cols, or M

    @classmethod
    def parse(cls, text: str) -> Granularity:
        """Parse ``element``, ``channel``, ``block:RxC``, ``nm:N:M`` or ``N:M``."""
        t = text.strip().lower()
        if t in ("element", "channel"):
            return cls(t)
        if m := re.fullmatch(r"block:(\d+)x(\d+)", t):
            r, c = int(m[1]), int(m[2])
            if r >= 1 and c >= 1:
                return cls("block", r, c)
        if m := re.fullmatch(r"(?:nm:)?(\d+):(\d+)", t):
            n, mm = int(m[1]), int(m[2])
            if 1 <= n < mm:
                return cls("nm", n, mm)
        raise UserError(
            f"unknown granularity '{text}'; use element, channel, block:RxC (e.g. block:4x1) or N:M (e.g. 2:4)"
        )

    def __str__(self) -> str:
        if self.kind == "block":
            return f"block:{self.a}x{self.b}"
        if self.kind == "nm":
            return f"{self.a}:{self.b}"
        return self.kind

    @property
    def implied_sparsity(self) -> float | None:
        """N:M fixes the sparsity at 1 - N/M; other granularities take any."""
        return 1.0 - self.a / self.b if self.kind == "nm" else None


ELEMENT = Granularity("element")


def fitting(gran: Granularity, shape: torch.Size) -> Granularity:
    """``gran``, or ``element`` for a weight smaller than one of its blocks (a head of two
    outputs under block:4x1: its mask is one ragged block, which no block kernel runs)."""
    if gran.kind != "block":
        return gran
    rows, cols = (shape[0], math.prod(shape[1:])) if len(shape) >= 2 else (0, 0)
    return ELEMENT if gran.a > rows or gran.b > cols else gran


def prunable_parameters(
    model: nn.Module, layer_types: Iterable[str] = ("conv", "linear"), exclude: Iterable[str] = ()
) -> dict[str, nn.Parameter]:
    """Weights of the layers of ``layer_types``, minus names matching an ``exclude`` glob."""
    kinds = tuple(t for name in layer_types for t in LAYER_TYPES[name])
    patterns = list(exclude)
    found: dict[str, nn.Parameter] = {}
    for mod_name, module in model.named_modules():
        if isinstance(module, kinds) and getattr(module, "weight", None) is not None:
            name = f"{mod_name}.weight" if mod_name else "weight"
            if not any(fnmatch.fnmatch(name, p) for p in patterns):
                found[name] = cast(nn.Parameter, module.weight)
    return found


@dataclasses.dataclass
class MaskSet:
    """Keep-masks (``True`` = kept) by parameter name, with each mask's granularity."""

    masks: dict[str, Tensor]
    granularity: dict[str, Granularity] = dataclasses.field(default_factory=dict)
    default: dataclasses.InitVar[Granularity | None] = None
    info: dict[str, object] = dataclasses.field(default_factory=dict)  # what the method chose

    def __post_init__(self, default: Granularity | None) -> None:
        self.masks = {k: v.to(torch.bool) for k, v in self.masks.items()}
        for name, mask in self.masks.items():
            self.granularity.setdefault(name, fitting(default or ELEMENT, mask.shape))

    @torch.no_grad()
    def apply(self, model: nn.Module) -> None:
        """Zero every pruned weight of ``model`` in place."""
        params = dict(model.named_parameters())
        for name, mask in self.masks.items():
            params[name].mul_(mask.to(params[name].dtype))

    def zeros(self) -> int:
        return sum(int((~m).sum()) for m in self.masks.values())

    def numel(self) -> int:
        return sum(m.numel() for m in self.masks.values())

    def sparsity(self) -> float:
        """Overall share of pruned weights among the masked (prunable) weights."""
        total = self.numel()
        return self.zeros() / total if total else 0.0


@dataclasses.dataclass(frozen=True)
class SparsityRow:
    """Pruned / total prunable weights of one layer or component."""

    name: str
    component: str
    numel: int
    zeros: int

    @property
    def sparsity(self) -> float:
        return self.zeros / self.numel if self.numel else 0.0


@dataclasses.dataclass(frozen=True)
class SparsityReport:
    layers: list[SparsityRow]
    components: list[SparsityRow]
    overall: SparsityRow
    denominator: str

    def to_dict(self) -> dict[str, object]:
        def row(r: SparsityRow) -> dict[str, object]:
            return {"name": r.name, "component": r.component, "numel": r.numel, "zeros": r.zeros,
                    "sparsity": round(r.sparsity, 6)}  # fmt: skip

        return {
            "denominator": self.denominator,
            "overall": row(self.overall),
            "components": [row(r) for r in self.components],
            "layers": [row(r) for r in self.layers],
        }


def sparsity_report(masks: Mapping[str, Tensor], graph: TaskGraph) -> SparsityReport:
    """Per layer, per component and overall sparsity of ``masks`` (keep-masks by name)."""
    layers = [
        SparsityRow(n, graph.component_of(n), m.numel(), int((~m.bool()).sum())) for n, m in masks.items()
    ]
    comps: dict[str, list[SparsityRow]] = {}
    for r in layers:
        comps.setdefault(r.component, []).append(r)
    order = [c.name for c in graph.components()]
    components = [
        SparsityRow(c, c, sum(r.numel for r in comps[c]), sum(r.zeros for r in comps[c])) for c in order if c in comps
    ]
    total = sum(r.numel for r in layers)
    overall = SparsityRow("overall", "overall", total, sum(r.zeros for r in layers))
    return SparsityReport(
        layers, components, overall,
        f"{total:,} prunable weights in {len(layers)} conv/linear layers (biases and norms not counted)",
    )  # fmt: skip


def weight_masks(params: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Keep-masks read off the weights themselves (non-zero = kept), for dense models."""
    return {n: p.detach() != 0 for n, p in params.items()}
