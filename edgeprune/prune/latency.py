"""Latency-aware allocation (``--allocate latency``): the per-layer sparsities with the lowest
predicted latency at the requested overall sparsity.

A pruned weight saves time only where the layer then runs a sparse kernel faster than dense,
and saves more where the layer does more multiply-adds per weight (early, high-resolution
convolutions). Uniform or global allocations ignore both: on a small model, global magnitude at
90% leaves the early layers 30-40% dense, which the compiler rightly keeps dense, so their
pruned weights cost accuracy and buy nothing. Here each prunable layer l gets the sparsity s_l
minimising

    sum_l T_l(s_l) + eps * T_dense * (n_l / N) * (s_l - s_m,l)^2   subject to   sum_l n_l s_l = s N

- ``T_l(s)``: the layer's multiply-adds at the deploy resolution (``input_size``; default the
  workload's) times the target's calibrated ratio to dense for the layer's shape (``edgeprune
  calibrate``; ``costmodel/table.py``) for the fastest format the granularity makes (CSR for
  ``element``; BSR or CSR for ``block:RxC``), capped at 1 (the compiler keeps a layer dense
  where that is faster). Layers without a sparse kernel (linear layers) save nothing.
- The quadratic term (``eps`` = 0.01: at most about 1% of the predicted time) only breaks ties:
  among allocations of nearly the same predicted time, the one nearest the method's. Each
  T_l is replaced by its lower convex hull for the choice, so that the table's few-percent
  wiggles do not decide between layers of the same kind and work per weight.
- It refines the method's own allocation s_m (CUT's per-task top-k and fusion, global
  magnitude's threshold...), which carries the method's judgement of accuracy: each layer keeps
  between half and twice the share it keeps there (s_m = 0.90 gives s_l in [0.80, 0.95], s_m =
  0.98 gives [0.96, 0.99], s_m = 0.40 gives [0, 0.70]), and the quadratic tie-break pulls
  towards s_m. The predicted time is nearly linear in s_l once sparse pays, so without a band the
  optimum is all-or-nothing (layers at the cap beside dense ones), and the accuracy cost of that
  is not in the objective: a band that also allowed twice the overall keep share let CUT's plan
  on mtl-resnet prune its stem and first stage to 95% and cost 47 points of ΔT
  (``benchmarks/accuracy_table.py --hardware``).

The constraint is met with a Lagrange multiplier (bisection), each layer choosing on a grid of
sparsities, and the last layers to change interpolated, so the total is exact to a weight.
This is a design of this tool (in the spirit of HALP, Shen et al., NeurIPS 2022, which ranks
by importance under a latency budget instead), not one of the papers' methods.

Usage::

    alloc = LatencyAllocation("host")
    per_layer = alloc.sparsities(layer_costs(ctx), 0.9, ELEMENT, around=method_sparsities)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from edgeprune.costmodel.table import CostTable, LayerShape, layer_kind
from edgeprune.errors import UserError
from edgeprune.masks import Granularity
from edgeprune.prune.context import PruneContext
from edgeprune.prune.policy import allocate
from edgeprune.resolution import parse_resolution
from edgeprune.targets import load_target

EPS = 0.01
BAND = 2.0
GRID = np.linspace(0.0, 1.0, 201)


@dataclasses.dataclass(frozen=True)
class LayerCost:
    """One prunable weight: its size, its multiply-adds per inference, its convolution kind
    (``1x1`` or ``kxk``; ``None`` where no sparse kernel runs it) and its output width."""

    weights: int
    macs: int
    kind: str | None
    width: int = 0
    stride: int = 1


def layer_costs(ctx: PruneContext, input_size: tuple[int, int] | None = None) -> dict[str, LayerCost]:
    """Every prunable weight's :class:`LayerCost`, from one forward pass of the example input
    (zeros of ``input_size`` instead, the deploy resolution, when given)."""
    owner = {id(p): n for n, p in ctx.params.items()}
    costs: dict[str, LayerCost] = {}

    def record(module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        name = owner.get(id(getattr(module, "weight", None)))
        if name is None or not isinstance(output, torch.Tensor):
            return
        weight = ctx.params[name]
        if isinstance(module, nn.Conv2d):
            positions = output[0].numel() // module.out_channels
            kind, width = layer_kind(tuple(module.kernel_size)), int(output.shape[-1])  # type: ignore[arg-type]
            stride = max(int(v) for v in module.stride)
        else:
            positions, kind, width, stride = max(1, output[0].numel() // weight.shape[0]), None, 0, 1
        costs[name] = LayerCost(weight.numel(), weight.numel() * positions, kind, width, stride)

    hooks = [m.register_forward_hook(record) for m in ctx.model.modules() if id(getattr(m, "weight", None)) in owner]
    was_training = ctx.model.training
    ctx.model.eval()
    x = ctx.example[:1] if input_size is None else ctx.example.new_zeros((1, ctx.example.shape[1], *input_size))
    try:
        with torch.no_grad():
            ctx.model(x)
    finally:
        for h in hooks:
            h.remove()
        ctx.model.train(was_training)
    for name, p in ctx.params.items():  # a weight the forward pass did not reach costs nothing
        costs.setdefault(name, LayerCost(p.numel(), 0, None))
    return costs


class LatencyAllocation:
    """Per-layer sparsities from a target's calibrated cost table (see the module docstring)."""

    def __init__(self, target: str = "host", input_size: tuple[int, int] | None = None) -> None:
        self.target, self.input_size = target, input_size
        self.table = CostTable.load(load_target(target).calibration_path)
        self._curves: dict[tuple[LayerCost, Granularity], np.ndarray] = {}  # curve() of each

    def _formats(self, gran: Granularity) -> tuple[str, ...]:
        if gran.kind == "element":
            return ("csr",)
        if gran.kind == "block":
            return ("bsr", "csr")
        raise UserError(f"--allocate latency takes element or block:RxC granularity, not {gran} "
                        "(N:M fixes every layer's sparsity)")  # fmt: skip

    def curve(self, cost: LayerCost, gran: Granularity) -> np.ndarray:
        """Predicted time of the layer (in multiply-adds of dense) at every sparsity of GRID,
        computed once per layer cost and granularity (a plan and its two predictions read it)."""
        key = (cost, gran)
        if key not in self._curves:
            self._curves[key] = self._curve(cost, gran)
        return self._curves[key]

    def _curve(self, cost: LayerCost, gran: Granularity) -> np.ndarray:
        ratios = np.ones_like(GRID)
        if cost.kind is not None:
            shape = LayerShape(float(cost.macs), cost.width, cost.stride) if cost.width else None
            for fmt in self._formats(gran):
                got = [self.table.ratio(fmt, cost.kind, 1.0 - float(s), shape) for s in GRID]
                if all(r is not None for r in got):
                    ratios = np.minimum(ratios, np.array(got, dtype=float))
        return cost.macs * ratios

    def sparsities(self, costs: Mapping[str, LayerCost], sparsity: float, gran: Granularity,
                   around: Mapping[str, float] | None = None) -> dict[str, float]:  # fmt: skip
        """Each layer's sparsity: lowest predicted time with ``sum n_l s_l = sparsity * N``,
        each layer keeping between half and twice the share it keeps at ``around[l]`` (the
        method's own allocation; default ``sparsity`` everywhere)."""
        self._formats(gran)
        names = list(costs)
        sizes = np.array([costs[n].weights for n in names], dtype=float)
        centre = np.array([sparsity if around is None else around[n] for n in names], dtype=float)
        keep = 1.0 - centre[:, None]
        low, high = keep / BAND, keep * BAND
        usable = np.greater_equal(GRID[None, :], 1.0 - high - 1e-9) & np.less_equal(GRID[None, :], 1.0 - low + 1e-9)
        usable[np.arange(len(names)), np.abs(GRID[None, :] - centre[:, None]).argmin(axis=1)] = True
        times = np.stack([_lower_hull(GRID, self.curve(costs[n], gran)) for n in names])
        dense = float(times[:, 0].sum()) or 1.0
        ties = EPS * dense * (sizes[:, None] / sizes.sum()) * (GRID[None, :] - centre[:, None]) ** 2
        objective = np.where(usable, times + ties, np.inf)
        want = sparsity * sizes.sum()

        def choose(lam: float) -> np.ndarray:
            return GRID[np.argmin(objective - lam * sizes[:, None] * GRID[None, :], axis=1)]

        # lam < 0 where the cheapest allocation prunes more than asked (sparsity that buys speed
        # in some layers is then given back by the layers where it buys none)
        lo, hi = -1.0, 1.0
        while float(sizes @ choose(hi)) < want and hi < 1e30:
            hi *= 4
        while float(sizes @ choose(lo)) > want and lo > -1e30:
            lo *= 4
        for _ in range(200):
            mid = (lo + hi) / 2
            if float(sizes @ choose(mid)) < want:
                lo = mid
            else:
                hi = mid
        chosen, fewer = choose(hi), choose(lo)
        # Layers whose choice jumps between lo and hi: step them back until the total fits.
        excess = float(sizes @ chosen) - want
        for i in np.argsort(-(chosen - fewer)):
            step = (chosen[i] - fewer[i]) * sizes[i]
            if excess <= 0 or step <= 0:
                break
            back = min(step, excess)
            chosen[i] -= back / sizes[i]
            excess -= back
        return {n: float(s) for n, s in zip(names, chosen, strict=True)}

    def predicted(self, costs: Mapping[str, LayerCost], per_layer: Mapping[str, float],
                  gran: Granularity) -> float:  # fmt: skip
        """Predicted time of the prunable layers at ``per_layer`` over their dense time."""
        total = dense = 0.0
        for n, cost in costs.items():
            curve = self.curve(cost, gran)
            total += float(np.interp(per_layer[n], GRID, curve))
            dense += float(curve[0])
        return total / dense if dense else 1.0


ALLOCATIONS = ("method", "latency")


def _lower_hull(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """``ys`` replaced by their lower convex hull over ``xs`` (increasing): the calibrated
    curves wiggle by a few percent, and a wiggle would otherwise decide between layers of the
    same kind and work per weight."""
    hull: list[int] = []
    for i in range(len(xs)):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            if (ys[b] - ys[a]) * (xs[i] - xs[a]) >= (ys[i] - ys[a]) * (xs[b] - xs[a]):
                hull.pop()  # b lies on or above the chord from a to i
            else:
                break
        hull.append(i)
    return np.interp(xs, xs[hull], ys[hull])


def latency_allocation(allocate: str, target: str, gran: Granularity, input_size: str | None = None
                       ) -> LatencyAllocation | None:  # fmt: skip
    """The ``--allocate`` option: ``method`` (the method's own allocation) or ``latency``, at
    ``input_size`` (``HxW``, the deploy resolution; default the workload's), checked against
    the granularity before any work."""
    if allocate not in ALLOCATIONS:
        raise UserError(f"unknown allocation '{allocate}'; use {' or '.join(ALLOCATIONS)}")
    if allocate != "latency":
        if input_size is not None:
            raise UserError("--input-size is the resolution --allocate latency plans for; add --allocate latency")
        return None
    alloc = LatencyAllocation(target, None if input_size is None else parse_resolution(input_size))
    alloc._formats(gran)
    return alloc


def refine(alloc: LatencyAllocation, ctx: PruneContext, scores: Mapping[str, torch.Tensor], sparsity: float,
           gran: Granularity, method_masks: Mapping[str, torch.Tensor]
           ) -> tuple[dict[str, torch.Tensor], dict[str, object]]:  # fmt: skip
    """The method's masks (``method_masks``) re-drawn from its ``scores`` (higher is kept first)
    at the per-layer sparsities planned around them, and what to record of the plan
    (``MaskSet.info``)."""
    costs = layer_costs(ctx, alloc.input_size)
    own = {n: 1.0 - float(m.float().mean()) for n, m in method_masks.items()}
    per_layer = alloc.sparsities(costs, sparsity, gran, own)
    info: dict[str, object] = {
        "allocation": "latency", "allocation_target": alloc.target,
        "allocation_input_size": list(alloc.input_size) if alloc.input_size else None,
        "layer_sparsity": {n: round(s, 4) for n, s in per_layer.items()},
        "layer_sparsity_method": {n: round(s, 4) for n, s in own.items()},
        "predicted_ratio": alloc.predicted(costs, per_layer, gran),
        "predicted_ratio_method": alloc.predicted(costs, own, gran),
    }  # fmt: skip
    return allocate(scores, sparsity, gran, per_layer=per_layer), info
