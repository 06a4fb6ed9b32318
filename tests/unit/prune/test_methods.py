"""The published methods' mechanisms on small, hand-checkable cases."""

import math

import pytest
import torch
from torch import nn

from edgeprune.errors import UserError
from edgeprune.masks import prunable_parameters
from edgeprune.prune.adapmtl import AdaptiveTaskWeights, soft_threshold
from edgeprune.prune.base import make_pruner
from edgeprune.prune.context import PruneContext
from edgeprune.prune.fusion import fuse
from edgeprune.prune.importance import connection_sensitivity
from edgeprune.prune.leep import leep
from edgeprune.prune.pipeline import PruneRequest, prune
from edgeprune.prune.smsp import aggregate
from edgeprune.prune.smsp_library import LibraryEntry, save_entry
from edgeprune.prune.source import load_and_extract
from edgeprune.taskgraph.graph import discover_task_graph
from edgeprune.workload import Metric, ModelSpec, Task, Workload
from edgeprune.workload.registry import build_model, resolve_workload
from edgeprune.workload.weights import state_hash


class HandModel(nn.Module):
    """h = w . x (w = [1, -2]); a = 3 h; b = -h."""

    def __init__(self):
        super().__init__()
        self.shared = nn.Linear(2, 1, bias=False)
        self.a = nn.Linear(1, 1, bias=False)
        self.b = nn.Linear(1, 1, bias=False)
        with torch.no_grad():
            self.shared.weight.copy_(torch.tensor([[1.0, -2.0]]))
            self.a.weight.fill_(3.0)
            self.b.weight.fill_(-1.0)

    def forward(self, x):
        h = self.shared(x)
        return {"a": self.a(h), "b": self.b(h)}


def hand_context():
    model = HandModel()
    x = torch.ones(1, 2)

    def identity_loss(pred, _target):
        return pred.sum()

    tasks = {t: Task(t, identity_loss, (Metric("m", lambda p, t: 0.0, True),)) for t in ("a", "b")}
    wl = Workload("hand", tasks, {"hand": ModelSpec("hand", HandModel)}, lambda split: (x, {"a": x, "b": x}))
    graph = discover_task_graph(model, x)
    return PruneContext(model, ["a", "b"], graph, prunable_parameters(model), wl, x)


def test_cut_scores_are_w_times_gradient_per_task_summed_over_batches():
    scores = connection_sensitivity(hand_context(), batches=2, batch_size=1, per_task=True)
    # task a: dLa/dw = 3 x = [3, 3] -> |w * g| = [3, 6]; dLa/dwa = h = -1 -> |3 * -1| = 3; b unreached
    torch.testing.assert_close(scores["a"]["shared.weight"], 2 * torch.tensor([[3.0, 6.0]]))
    torch.testing.assert_close(scores["a"]["a.weight"], 2 * torch.tensor([[3.0]]))
    torch.testing.assert_close(scores["a"]["b.weight"], torch.tensor([[0.0]]))
    # task b: dLb/dw = -x -> |w * g| = [1, 2]; dLb/dwb = h = -1 -> |-1 * -1| = 1
    torch.testing.assert_close(scores["b"]["shared.weight"], 2 * torch.tensor([[1.0, 2.0]]))
    torch.testing.assert_close(scores["b"]["b.weight"], 2 * torch.tensor([[1.0]]))


M1 = torch.tensor([1, 1, 0, 0, 1], dtype=torch.bool)
M2 = torch.tensor([1, 0, 1, 0, 1], dtype=torch.bool)
M3 = torch.tensor([0, 1, 1, 0, 1], dtype=torch.bool)


def test_fusion_rules_on_hand_made_masks():
    assert fuse({"a": M1, "b": M2}, "or").tolist() == [True, True, True, False, True]
    assert fuse({"a": M1, "b": M2}, "and").tolist() == [True, False, False, False, True]
    assert fuse({"a": M1, "b": M2, "c": M3}, "vote").tolist() == [True, True, True, False, True]
    assert fuse({"a": M1, "b": M2, "c": M3}, "vote", vote_min=3).tolist() == [False, False, False, False, True]
    assert fuse({"a": M1}, "and").tolist() == M1.tolist()  # a task-specific weight keeps its task's mask


def test_vote_does_not_modify_the_task_masks():
    before = M1.clone()
    fuse({"a": M1, "b": M2, "c": M3}, "vote")
    assert torch.equal(M1, before)


def _digits_ctx():
    wl = resolve_workload("digits")
    loaded = load_and_extract(wl, None, None, None)
    return PruneContext(loaded.model, loaded.tasks, loaded.graph, prunable_parameters(loaded.model), wl,
                        wl.example())  # fmt: skip


@pytest.fixture(scope="module")
def digits_ctx():
    """Shared: the methods that train (IMP, AdapMTL) leave its model pruned for later tests."""
    return _digits_ctx()


@pytest.fixture
def fresh_digits_ctx():
    """The pre-trained model, untouched by earlier tests."""
    return _digits_ctx()


@pytest.mark.parametrize("fusion", ["or", "and", "vote"])
def test_cut_meets_the_target_whatever_the_fusion_and_heads_keep_their_own_mask(digits_ctx, fusion):
    pruner = make_pruner("cut", {"fusion": fusion, "calib_batches": 4})
    masks = pruner.prune(digits_ctx, 0.9)
    assert abs(masks.sparsity() - 0.9) <= 0.005
    ratio = masks.info["keep_ratio"]
    scores = pruner.scores(digits_ctx)
    from edgeprune.prune.cut import task_ranks

    reached = [n for n in digits_ctx.params if "digit" in digits_ctx.graph.param_tasks[n]]
    ranks, total = task_ranks(scores["digit"], reached)
    head = "heads.digit.0.weight"
    assert torch.equal(masks.masks[head], ranks[head] < ratio * total)


def test_cut_and_keeps_less_per_task_than_or_needs(digits_ctx):
    r_or = make_pruner("cut", {"fusion": "or", "calib_batches": 2}).prune(digits_ctx, 0.8).info["keep_ratio"]
    r_and = make_pruner("cut", {"fusion": "and", "calib_batches": 2}).prune(digits_ctx, 0.8).info["keep_ratio"]
    assert r_or < r_and  # OR keeps the union, so each task may keep less for the same total


def test_adapmtl_threshold_gradient_is_the_subgradient():
    w = torch.tensor([0.5, -0.3, 0.01, -0.02, 0.2])
    s = torch.tensor(-2.0, requires_grad=True)
    soft_threshold(w, s).sum().backward()
    sig = torch.sigmoid(torch.tensor(-2.0))
    alive = w.abs() > sig
    expected = -(sig * (1 - sig)) * torch.sign(w)[alive].sum()
    torch.testing.assert_close(s.grad, expected)
    out = soft_threshold(w, torch.tensor(-2.0))
    assert torch.all(out[~alive] == 0) and torch.allclose(out[alive], torch.sign(w[alive]) * (w[alive].abs() - sig))


def test_adaptive_task_weights_on_a_known_loss_sequence():
    seq = [{"a": 1.0, "b": 1.0}, {"a": 0.5, "b": 0.8}, {"a": 0.5, "b": 0.8}, {"a": 0.25, "b": 0.8}]
    tw = AdaptiveTaskWeights(["a", "b"], window=10, warmup=0)
    assert tw.weights() == {"a": 1.0, "b": 1.0}
    for losses in seq:
        w = tw.update(losses)
    # a: |1-.5|/.5 = 1, 0, |.5-.25|/.25 = 1 -> 2/3; b: .25, 0, 0 -> 1/12; scaled to sum to 2
    assert w["a"] == pytest.approx(2 * (2 / 3) / (2 / 3 + 1 / 12))
    assert w["b"] == pytest.approx(2 * (1 / 12) / (2 / 3 + 1 / 12))
    windowed = AdaptiveTaskWeights(["a", "b"], window=2, warmup=0)
    for losses in seq:
        w = windowed.update(losses)
    assert w == {"a": pytest.approx(2.0), "b": pytest.approx(0.0)}  # only the last two changes count
    warm = AdaptiveTaskWeights(["a", "b"], window=10, warmup=3)
    for losses in seq[:3]:
        assert warm.update(losses) == {"a": 1.0, "b": 1.0}


@pytest.mark.slow
def test_adapmtl_stops_its_thresholds_at_the_target_and_reports_components():
    res = prune(PruneRequest("digits", "adapmtl", 0.8, options={"train_steps": 60, "train_batch_size": 32,
                                                                  "warmup": 10, "window": 20, "train_lr": 1e-3},
                             evaluate_before=False))  # fmt: skip
    info = res.masks.info
    assert abs(res.report.overall.sparsity - 0.8) <= 0.005
    assert info["stopped_at_step"] is not None and info["stopped_at_step"] <= 0.6 * 60 + 1
    assert set(info["component_sparsity"]) == {"backbone", "head:digit", "head:parity", "head:ge5"}
    params = dict(res.model.named_parameters())
    for name, mask in res.masks.masks.items():
        assert torch.all(params[name][~mask] == 0) and torch.all(params[name][mask] != 0)


def test_leep_against_a_hand_computed_example():
    theta = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    y = torch.tensor([0, 1, 0])
    joint = [[sum(theta[i, z].item() for i in range(3) if y[i] == yy) / 3 for z in range(2)] for yy in range(2)]
    pz = [joint[0][z] + joint[1][z] for z in range(2)]
    expected = sum(math.log(sum(joint[y[i]][z] / pz[z] * theta[i, z].item() for z in range(2))) for i in range(3)) / 3
    assert leep(theta, y) == pytest.approx(expected)
    assert leep(theta, y) == pytest.approx(-0.4087, abs=1e-4)


def test_smsp_aggregation_normalises_each_entry():
    assert aggregate([{"x": 2.0, "y": 2.0}, {"x": 1.0, "y": 0.0}]) == {"x": 1.5, "y": 0.5}


def pool_entry(task, scores, source_hash):
    return LibraryEntry(task, "digit-pool", "pool-cnn", source_hash, 0.8, scores, {})


def test_smsp_picks_the_similar_task_and_its_filters(tmp_path):
    wl = resolve_workload("digit-pool")
    source_hash = state_hash(build_model(wl).state_dict())
    ids = [f"backbone.0#filter{f}" for f in range(16)]
    # mod4 determines parity, lt3 does not: mod4 favours even filters, lt3 odd ones
    save_entry(pool_entry("mod4", {i: (1.0 if f % 2 == 0 else 0.01) for f, i in enumerate(ids)}, source_hash), tmp_path)
    save_entry(pool_entry("lt3", {i: (1.0 if f % 2 else 0.01) for f, i in enumerate(ids)}, source_hash), tmp_path)
    res = prune(PruneRequest("digit-pool", "smsp", 0.005, tasks=["parity"], options={"mask_library": str(tmp_path),
                             "top_k": 1}, evaluate_before=False))  # fmt: skip
    info = res.masks.info
    assert info["chosen"] == ["mod4"] and info["similarity_leep"]["mod4"] > info["similarity_leep"]["lt3"]
    rows = res.masks.masks["backbone.0.weight"].reshape(16, -1).any(dim=1)
    assert not rows[1::2].all() and rows[0::2].all()  # odd filters go first, even ones stay


def test_smsp_refuses_a_library_of_another_model(tmp_path):
    from edgeprune.errors import UserError

    save_entry(pool_entry("mod4", {"backbone.0#filter0": 1.0}, "0" * 64), tmp_path)
    with pytest.raises(UserError, match="another pre-trained model"):
        prune(PruneRequest("digit-pool", "smsp", 0.5, tasks=["parity"], options={"mask_library": str(tmp_path)},
                           evaluate_before=False))  # fmt: skip


@pytest.mark.parametrize(("method", "opts"), [
    ("snip", {}), ("imp", {"rounds": 2, "round_steps": 5}), ("cut", {"calib_batches": 2}),
])  # fmt: skip
@pytest.mark.parametrize("target", [0.5, 0.9, 0.95])
def test_methods_meet_their_sparsity_within_half_a_point(digits_ctx, method, opts, target):
    assert abs(make_pruner(method, opts).prune(digits_ctx, target).sparsity() - target) <= 0.005


@pytest.mark.slow
@pytest.mark.parametrize("model", ["pool-cnn", "pool-vit"])
def test_smsp_meets_its_sparsity_with_a_real_library(tmp_path, model):
    from edgeprune.prune.smsp_library import build_entry

    for task in ("mod4", "lt3"):
        save_entry(build_entry("digit-pool", model, task, 0.6, steps=2), tmp_path)
    res = prune(PruneRequest("digit-pool", "smsp", 0.6, tasks=["parity"], model=model,
                             options={"mask_library": str(tmp_path)}, evaluate_before=False))  # fmt: skip
    assert abs(res.report.overall.sparsity - 0.6) <= 0.005
    assert res.masks.info["chosen"][0] == "mod4"  # parity is a function of mod4


def test_every_method_in_the_registry_names_code_that_exists():
    from edgeprune.prune.registry import BUILTIN_METHODS, load_reference, method_spec

    for spec in BUILTIN_METHODS:
        assert callable(load_reference(spec.factory)), spec.name
        assert spec.sparsity_fixed_by(spec.options) == (0.5 if spec.name == "nm" else None)
    assert method_spec("nm").sparsity_fixed_by({"pattern": "1:4"}) == 0.75


def test_vit_structures_are_whole_heads_and_nodes():
    from edgeprune.models.pool import PoolViT
    from edgeprune.prune.structures import find_structures, structure_masks

    model = PoolViT({"parity": 2})
    params = prunable_parameters(model)
    found = find_structures(model, params)
    assert len(found) == 2 * (4 + 128)  # 2 blocks x (4 heads + 128 MLP nodes); embeddings and heads stay
    masks = structure_masks(params, found, {s.id for s in found} - {"blocks.0.attn#head1", "blocks.1.mlp#node5"})
    for m in ("q", "k", "v"):
        rows = masks[f"blocks.0.attn.{m}.weight"].all(dim=1)
        assert not rows[16:32].any() and rows[:16].all() and rows[32:].all()
    assert not masks["blocks.0.attn.proj.weight"][:, 16:32].any()
    assert not masks["blocks.1.mlp.fc1.weight"][5].any() and not masks["blocks.1.mlp.fc2.weight"][:, 5].any()
    assert masks["patch.weight"].all() and masks["heads.parity.weight"].all()


@pytest.mark.slow
def test_adapmtl_from_scratch_reinitialises_and_meets_the_target():
    res = prune(PruneRequest("digits", "adapmtl", 0.7, tasks=["parity"],
                             options={"train_steps": 30, "train_batch_size": 32, "from_scratch": True},
                             evaluate_before=False))  # fmt: skip
    assert abs(res.report.overall.sparsity - 0.7) <= 0.005
    assert res.after["parity"]["top1"] < 0.9  # 30 steps from scratch cannot match the pre-trained 0.98


@pytest.mark.parametrize(("method", "opts"), [
    ("snip", {}), ("imp", {"rounds": 2, "round_steps": 5}), ("cut", {"calib_batches": 2}),
    ("cut", {"calib_batches": 2, "fusion": "vote"}),
])  # fmt: skip
def test_block_granularity_keeps_whole_blocks_at_the_target(digits_ctx, method, opts):
    """Scores pooled per 4x1 block (the BSR kernel's), the method otherwise unchanged."""
    masks = make_pruner(method, {**opts, "granularity": "block:4x1"}).prune(digits_ctx, 0.9)
    assert abs(masks.sparsity() - 0.9) <= 0.01
    for name, m in masks.masks.items():
        mat = m.reshape(m.shape[0], -1)
        rows = mat.shape[0] // 4 * 4
        if rows == 0:  # a head of fewer than 4 outputs: one ragged block
            continue
        blocks = mat[:rows].reshape(rows // 4, 4, -1)
        assert bool((blocks.all(dim=1) | ~blocks.any(dim=1)).all()), name  # a block is kept or pruned whole
    assert any(not bool(m.all()) for n, m in masks.masks.items() if n.startswith("backbone"))  # shared layers too
    small = {n for n, m in masks.masks.items() if m.shape[0] < 4}  # heads of 2 outputs: smaller than a block
    assert {str(g) for n, g in masks.granularity.items() if n not in small} == {"block:4x1"}
    assert {str(masks.granularity[n]) for n in small} <= {"element"}


def test_a_block_granularity_checkpoint_with_heads_smaller_than_a_block_loads(tmp_path):
    from edgeprune.checkpoint import load_checkpoint
    from edgeprune.prune.pipeline import write_checkpoint

    result = prune(PruneRequest("digits", "cut", 0.9, options={"granularity": "block:4x1", "calib_batches": 2},
                                evaluate_before=False))  # fmt: skip
    write_checkpoint(result, tmp_path / "b.ept")
    ckpt = load_checkpoint(tmp_path / "b.ept")  # refused before: block:4x1 on a [2, 32] head
    assert str(ckpt.masks.granularity["backbone.3.weight"]) == "block:4x1"


@pytest.mark.parametrize("method", ["cut", "snip", "imp", "adapmtl"])
def test_a_granularity_the_method_cannot_rank_by_is_refused(method):
    with pytest.raises(UserError, match=f"{method} takes element, block:RxC or N:M"):
        make_pruner(method, {"granularity": "channel"})


def test_adapmtl_takes_block_granularity_with_whole_blocks_at_the_target(fresh_digits_ctx):
    digits_ctx = fresh_digits_ctx
    masks = make_pruner("adapmtl", {"granularity": "block:4x1", "train_steps": 12, "warmup": 2, "window": 5}
                        ).prune(digits_ctx, 0.9)  # fmt: skip
    assert abs(masks.sparsity() - 0.9) <= 0.01
    for name, m in masks.masks.items():
        if m.shape[0] < 4:
            assert str(masks.granularity[name]) == "element"
            continue
        mat = m.reshape(m.shape[0], -1)
        blocks = mat[: mat.shape[0] // 4 * 4].reshape(mat.shape[0] // 4, 4, -1)
        assert bool((blocks.all(dim=1) | ~blocks.any(dim=1)).all()), name
    weights = dict(digits_ctx.model.named_parameters())
    assert all(torch.equal(weights[n] != 0, m) for n, m in masks.masks.items())  # the weights are w'


def test_adapmtl_block_shrink_is_eq2_for_one_by_one_blocks_and_whole_blocks_otherwise():
    from edgeprune.masks import Granularity

    w = torch.randn(8, 3, 3, 3)
    s = torch.tensor(-1.5)
    torch.testing.assert_close(soft_threshold(w, s, Granularity("block", 1, 1)), soft_threshold(w, s))
    out = soft_threshold(w, s, Granularity("block", 4, 1)).reshape(2, 4, 27)
    rms = w.reshape(2, 4, 27).pow(2).mean(dim=1, keepdim=True).sqrt()
    t = torch.sigmoid(s)
    torch.testing.assert_close(out, w.reshape(2, 4, 27) * torch.relu(rms - t) / rms)
    w = w.clone().requires_grad_(True)
    with torch.no_grad():
        w[:4] = 0  # a block pruned already (a pruned checkpoint pruned again): no NaN gradient
    soft_threshold(w, s, Granularity("block", 4, 1)).sum().backward()
    assert bool(torch.isfinite(w.grad).all())


def test_fused_rank_orders_weights_as_the_fusion_keeps_them():
    from edgeprune.prune.fusion import fused_rank

    gen = torch.Generator().manual_seed(0)
    ranks = {t: torch.rand(500, generator=gen) for t in ("a", "b", "c")}
    for how, vote_min in (("or", None), ("and", None), ("vote", None), ("vote", 3), ("vote", 1)):
        order = fused_rank(ranks, how, vote_min)
        for r in (0.05, 0.3, 0.5, 0.9):
            assert torch.equal(fuse({t: v < r for t, v in ranks.items()}, how, vote_min), order < r), (how, r)


@pytest.mark.parametrize(("method", "opts"), [
    ("cut", {"calib_batches": 2}), ("cut", {"calib_batches": 2, "fusion": "and"}), ("snip", {}),
    ("imp", {"rounds": 2, "round_steps": 3}), ("adapmtl", {"train_steps": 4, "warmup": 1, "window": 2}),
])  # fmt: skip
def test_nm_granularity_keeps_n_of_every_m_input_channels(fresh_digits_ctx, method, opts):
    digits_ctx = fresh_digits_ctx
    from edgeprune.prune.policy import nm_fits

    masks = make_pruner(method, {**opts, "granularity": "1:4"}).prune(digits_ctx, 0.75)
    fits = 0
    for name, m in masks.masks.items():
        if not nm_fits(m.shape, 4):
            assert bool(m.all()), name  # as method nm: weights not in whole groups of 4 stay dense
            continue
        fits += 1
        per_group = m.movedim(1, -1).reshape(-1, 4).sum(dim=1)
        assert int(per_group.max()) <= 1 and float(per_group.float().mean()) > 0.9, name
    assert fits >= 2


def test_an_nm_granularity_fixes_the_sparsity():
    from edgeprune.prune.registry import method_spec

    for method in ("cut", "adapmtl", "snip", "imp", "magnitude", "random"):
        assert method_spec(method).sparsity_fixed_by({"granularity": "2:4"}) == 0.5, method
    with pytest.raises(UserError, match="fixes the sparsity at 0.5, not 0.9"):
        prune(PruneRequest("digits", "magnitude", 0.9, options={"granularity": "2:4"}, evaluate_before=False))
