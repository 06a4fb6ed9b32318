import pytest
import torch

from edgeprune.masks import prunable_parameters
from edgeprune.models.digits import DigitsCNN
from edgeprune.models.resnet import MTLResNet
from edgeprune.prune.base import make_pruner
from edgeprune.prune.context import PruneContext
from edgeprune.taskgraph.graph import discover_task_graph
from edgeprune.workload.digits import make_workload


def context(model, x):
    graph = discover_task_graph(model, x)
    return PruneContext(model, list(graph.tasks), graph, prunable_parameters(model), make_workload(), x)


@pytest.fixture(scope="module")
def resnet_ctx():
    torch.manual_seed(0)
    return context(MTLResNet({"seg": 5, "depth": 1, "normal": 3}), torch.randn(1, 3, 32, 32))


@pytest.fixture(scope="module")
def digits_ctx():
    torch.manual_seed(0)
    return context(DigitsCNN({"digit": 10, "parity": 2, "ge5": 2}), torch.randn(1, 1, 28, 28))


CASES = [
    ("random", {}), ("random", {"scope": "global"}), ("magnitude", {}), ("magnitude", {"scope": "global"}),
    ("magnitude", {"granularity": "block:4x1"}), ("magnitude", {"granularity": "block:2x2", "scope": "global"}),
    ("magnitude", {"granularity": "channel"}), ("l1-filter", {}),
]  # fmt: skip


@pytest.mark.parametrize(("method", "opts"), CASES)
@pytest.mark.parametrize("target", [0.5, 0.7, 0.9, 0.95])
def test_every_baseline_meets_its_sparsity_within_half_a_point(resnet_ctx, method, opts, target):
    masks = make_pruner(method, opts).prune(resnet_ctx, target)
    assert set(masks.masks) == set(resnet_ctx.params)
    assert abs(masks.sparsity() - target) <= 0.005


@pytest.mark.parametrize("target", [0.5, 0.9])
def test_baselines_meet_sparsity_on_the_tiny_model(digits_ctx, target):
    for method, opts in CASES:
        assert abs(make_pruner(method, opts).prune(digits_ctx, target).sparsity() - target) <= 0.005, (method, opts)


def test_layerwise_magnitude_keeps_the_largest_weights_of_each_layer(digits_ctx):
    masks = make_pruner("magnitude", {}).prune(digits_ctx, 0.7)
    for name, mask in masks.masks.items():
        w = digits_ctx.params[name].detach().abs()
        assert w[mask].min() >= w[~mask].max()
        assert abs((~mask).float().mean().item() - 0.7) < 0.01


def test_global_magnitude_uses_one_threshold(digits_ctx):
    masks = make_pruner("magnitude", {"scope": "global"}).prune(digits_ctx, 0.8)
    kept = torch.cat([digits_ctx.params[n].detach().abs()[m] for n, m in masks.masks.items()])
    dropped = torch.cat([digits_ctx.params[n].detach().abs()[~m] for n, m in masks.masks.items()])
    # all but each layer's protected best weight lie above the global threshold
    assert (kept < dropped.max()).sum() <= len(masks.masks)


def test_two_four_keeps_exactly_two_of_every_four_input_channels(resnet_ctx):
    masks = make_pruner("nm", {}).prune(resnet_ctx, 0.5)
    checked = 0
    for name, mask in masks.masks.items():
        if mask.shape[1] % 4:
            assert mask.all()  # stem conv (3 input channels) stays dense
            continue
        groups = mask.movedim(1, -1).reshape(-1, 4)
        assert torch.all(groups.sum(dim=1) == 2)
        w = resnet_ctx.params[name].detach().abs().movedim(1, -1).reshape(-1, 4)
        assert torch.all(w[groups].reshape(-1, 2).min(dim=1).values >= w[~groups].reshape(-1, 2).max(dim=1).values)
        checked += 1
    assert checked > 10
    assert abs(masks.sparsity() - 0.5) <= 0.005


def test_l1_filter_prunes_whole_output_filters_and_keeps_one_per_layer(resnet_ctx):
    masks = make_pruner("l1-filter", {}).prune(resnet_ctx, 0.9)
    for mask in masks.masks.values():
        rows = mask.reshape(mask.shape[0], -1)
        assert torch.all(rows.all(dim=1) | (~rows).all(dim=1))
        assert rows.all(dim=1).any()


def test_block_masks_are_whole_blocks(resnet_ctx):
    masks = make_pruner("magnitude", {"granularity": "block:4x1"}).prune(resnet_ctx, 0.9)
    mask = masks.masks["backbone.layer3.0.conv1.weight"]
    mat = mask.reshape(mask.shape[0], -1)
    blocks = mat.reshape(mat.shape[0] // 4, 4, -1)
    assert torch.all(blocks.all(dim=1) | (~blocks).all(dim=1))


def test_random_is_seeded(digits_ctx):
    a = make_pruner("random", {"seed": 3}).prune(digits_ctx, 0.5).masks
    b = make_pruner("random", {"seed": 3}).prune(digits_ctx, 0.5).masks
    c = make_pruner("random", {"seed": 4}).prune(digits_ctx, 0.5).masks
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_filter_pruning_never_removes_task_outputs():
    import dataclasses

    from edgeprune.taskgraph.extract import extract_tasks, output_layers

    torch.manual_seed(0)
    model = extract_tasks(MTLResNet({"seg": 5, "depth": 1, "normal": 3}), ["seg", "depth"])
    ctx = dataclasses.replace(context(model, torch.randn(1, 3, 32, 32)), output_layers=frozenset(output_layers(model)))
    masks = make_pruner("l1-filter", {}).prune(ctx, 0.9)
    assert masks.masks["heads.seg.classifier.weight"].all() and masks.masks["heads.depth.classifier.weight"].all()
    assert abs(masks.sparsity() - 0.9) <= 0.005
