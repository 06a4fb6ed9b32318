import pytest
import torch
from helpers import SharedNeck

from edgeprune.errors import UserError
from edgeprune.masks import Granularity, MaskSet, prunable_parameters, sparsity_report
from edgeprune.taskgraph.graph import discover_task_graph


@pytest.mark.parametrize(
    ("text", "kind", "a", "b"),
    [("element", "element", 1, 1), ("channel", "channel", 1, 1), ("block:4x1", "block", 4, 1),
     ("2:4", "nm", 2, 4), ("nm:1:8", "nm", 1, 8)],
)  # fmt: skip
def test_granularity_parses_and_prints_back(text, kind, a, b):
    g = Granularity.parse(text)
    assert (g.kind, g.a, g.b) == (kind, a, b)
    assert Granularity.parse(str(g)) == g


@pytest.mark.parametrize("bad", ["blocks", "block:0x4", "4:2", "2:2", ""])
def test_bad_granularity_is_a_user_error(bad):
    with pytest.raises(UserError, match="granularity"):
        Granularity.parse(bad)


def test_prunable_parameters_are_conv_and_linear_weights_minus_excluded():
    model = SharedNeck()
    names = set(prunable_parameters(model))
    assert names == {"backbone.weight", "neck.0.weight", "seg.weight", "depth.weight", "normal.weight"}
    assert set(prunable_parameters(model, exclude=["neck.*", "seg.*"])) == names - {"neck.0.weight", "seg.weight"}
    assert set(prunable_parameters(model, layer_types=["linear"])) == set()


def test_sparsity_report_per_layer_component_and_overall():
    model = SharedNeck()
    graph = discover_task_graph(model, torch.randn(1, 3, 8, 8))
    params = prunable_parameters(model)
    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in params.items()}
    masks["backbone.weight"].view(-1)[:108] = False  # 108 of 216 -> 50%
    masks["neck.0.weight"].view(-1)[:576] = False  # all 576
    report = sparsity_report(masks, graph)
    comps = {r.name: (r.numel, r.zeros) for r in report.components}
    assert comps["backbone"] == (216, 108)
    assert comps["shared:depth+normal"] == (576, 576)
    assert comps["head:seg"] == (32, 0)
    total = 216 + 576 + 32 + 8 + 24
    assert (report.overall.numel, report.overall.zeros) == (total, 684)
    assert report.overall.sparsity == pytest.approx(684 / total)
    assert f"{total:,} prunable weights in 5" in report.denominator


def test_maskset_apply_zeros_exactly_the_pruned_weights():
    model = SharedNeck()
    w = model.seg.weight
    mask = torch.rand(w.shape) > 0.5
    MaskSet({"seg.weight": mask}).apply(model)
    assert torch.all(w[~mask] == 0)
    assert torch.all(w[mask] != 0)
