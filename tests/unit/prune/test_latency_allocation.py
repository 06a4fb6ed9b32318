"""--allocate latency: per-layer sparsities for the lowest predicted latency at the target."""

import numpy as np
import pytest

from edgeprune.errors import UserError
from edgeprune.masks import ELEMENT, Granularity, prunable_parameters
from edgeprune.prune.base import make_pruner
from edgeprune.prune.context import PruneContext
from edgeprune.prune.latency import LatencyAllocation, LayerCost, _lower_hull, layer_costs
from edgeprune.prune.source import load_and_extract
from edgeprune.workload.registry import resolve_workload


@pytest.fixture
def digits_ctx():
    wl = resolve_workload("digits")
    loaded = load_and_extract(wl, None, None, None)
    return PruneContext(loaded.model, loaded.tasks, loaded.graph, prunable_parameters(loaded.model), wl,
                        wl.example())  # fmt: skip


def test_layers_doing_more_work_per_weight_are_pruned_harder_and_the_total_is_exact():
    alloc = LatencyAllocation("host")
    costs = {"early": LayerCost(1_000, 1_000 * 1024, "kxk"), "late": LayerCost(50_000, 50_000 * 64, "kxk"),
             "linear": LayerCost(20_000, 20_000, None)}  # fmt: skip
    per = alloc.sparsities(costs, 0.9, ELEMENT)
    total = sum(per[n] * c.weights for n, c in costs.items()) / sum(c.weights for c in costs.values())
    assert total == pytest.approx(0.9, abs=1e-9)
    assert per["early"] == pytest.approx(0.95)  # at the band's edge: half the overall keep share
    assert per["early"] > per["late"] and per["linear"] < 0.9  # no kernel: its sparsity buys nothing
    assert all(0.8 - 1e-9 <= s <= 0.95 + 1e-9 for s in per.values())
    uniform = alloc.predicted(costs, dict.fromkeys(costs, 0.9), ELEMENT)
    assert alloc.predicted(costs, per, ELEMENT) < uniform


def test_the_plan_stays_near_the_methods_own_allocation():
    alloc = LatencyAllocation("host")
    costs = {"a": LayerCost(4_608, 4_608 * 1024, "kxk", 112), "b": LayerCost(73_728, 73_728 * 49, "kxk", 7),
             "c": LayerCost(73_728, 73_728 * 49, "kxk", 7)}  # fmt: skip
    total = sum(c.weights for c in costs.values())
    own = {"a": 0.5, "b": 0.98, "c": (0.9 * total - 0.5 * 4_608 - 0.98 * 73_728) / 73_728}
    per = alloc.sparsities(costs, 0.9, ELEMENT, own)
    assert sum(per[n] * c.weights for n, c in costs.items()) / total == pytest.approx(0.9, abs=1e-9)
    assert 0.5 < per["a"] <= 0.75 + 1e-9  # early, high resolution: pruned harder, within its band
    assert 0.96 - 1e-9 <= per["b"] <= 0.99 + 1e-9


def test_identical_layers_get_the_same_sparsity():
    alloc = LatencyAllocation("host")
    costs = {f"l{i}": LayerCost(4_608, 4_608 * 64, "kxk") for i in range(4)}
    per = alloc.sparsities(costs, 0.9, Granularity.parse("block:4x1"))
    assert max(per.values()) - min(per.values()) < 1e-9 and per["l0"] == pytest.approx(0.9)


def test_lower_hull_removes_wiggles_and_keeps_convex_points():
    xs = np.linspace(0, 1, 5)
    ys = np.array([1.0, 0.9, 0.85, 0.3, 0.1])
    hull = _lower_hull(xs, ys)
    assert np.all(hull <= ys + 1e-12) and hull[0] == 1.0 and hull[-1] == 0.1 and hull[3] == 0.3
    assert hull[1] == pytest.approx(1.0 - (1.0 - 0.3) / 3) and hull[2] < 0.85


def test_layer_costs_count_multiply_adds_at_the_example_size(digits_ctx):
    costs = layer_costs(digits_ctx)
    first = digits_ctx.params["backbone.0.weight"]
    assert costs["backbone.0.weight"].kind == "kxk"
    assert costs["backbone.0.weight"].macs == first.numel() * 28 * 28  # 'same' padding on 28x28
    assert costs["heads.digit.0.weight"].kind is None  # a linear layer: no sparse kernel


@pytest.mark.parametrize(("method", "opts"), [
    ("magnitude", {"scope": "global"}), ("snip", {}), ("cut", {"calib_batches": 2}),
    ("cut", {"calib_batches": 2, "granularity": "block:4x1"}), ("imp", {"rounds": 2, "round_steps": 2}),
])  # fmt: skip
def test_methods_follow_the_plan_at_the_target(digits_ctx, method, opts):
    masks = make_pruner(method, {**opts, "allocate": "latency"}).prune(digits_ctx, 0.9)
    info = masks.info
    assert abs(masks.sparsity() - 0.9) <= 0.005
    assert info["allocation"] == "latency" and info["predicted_ratio"] <= info["predicted_ratio_method"] + 1e-3
    for name, planned in info["layer_sparsity"].items():
        m = masks.masks[name]
        group = 4 if opts.get("granularity") else 1
        assert abs(1 - float(m.float().mean()) - planned) <= max(0.01, 2 * group / m.numel()), name
        own = 1 - info["layer_sparsity_method"][name]  # the band around the method's keep share
        assert own / 2 - 0.006 <= 1 - planned <= 2 * own + 0.006, name


def test_bad_allocation_settings_are_refused():
    with pytest.raises(UserError, match="unknown allocation 'fast'; use method or latency"):
        make_pruner("magnitude", {"allocate": "fast"})
    with pytest.raises(UserError, match="unknown target"):
        make_pruner("cut", {"allocate": "latency", "target": "no-such-board"})
    with pytest.raises(UserError, match="--allocate latency takes element or block:RxC granularity, not 2:4"):
        LatencyAllocation().sparsities({"a": LayerCost(8, 8, "kxk")}, 0.5, Granularity.parse("2:4"))
    for method in ("cut", "magnitude"):  # refused before any work
        with pytest.raises(UserError, match="takes element or block:RxC granularity, not channel|not 2:4"):
            make_pruner(method, {"allocate": "latency", "granularity": "2:4"})
