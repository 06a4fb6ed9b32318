import pytest
import torch
from helpers import SharedBackbone, SharedNeck, TreeModel
from torch import nn

from edgeprune.errors import UserError
from edgeprune.taskgraph.graph import discover_task_graph

X = torch.randn(2, 3, 8, 8)


def comps(model, tasks=None):
    graph = discover_task_graph(model, X, tasks)
    return {c.name: set(c.params) for c in graph.components()}, graph


def test_shared_backbone_with_separate_heads():
    found, _ = comps(SharedBackbone())
    assert found == {
        "backbone": {"backbone.0.weight", "backbone.0.bias"},
        "head:a": {"heads.a.weight", "heads.a.bias"},
        "head:b": {"heads.b.weight", "heads.b.bias"},
        "head:c": {"heads.c.weight", "heads.c.bias"},
    }


def test_tree_shaped_model_has_a_component_shared_by_a_subset():
    found, graph = comps(TreeModel())
    assert found["backbone"] == {"trunk.weight", "trunk.bias"}
    assert found["shared:a+b"] == {"branch1.weight", "branch1.bias"}
    assert found["head:c"] == {"branch2.weight", "branch2.bias", "head_c.weight", "head_c.bias"}
    assert graph.param_tasks["branch1.weight"] == frozenset({"a", "b"})


def test_heads_sharing_a_neck():
    found, _ = comps(SharedNeck())
    assert found["backbone"] == {"backbone.weight", "backbone.bias"}
    assert found["shared:depth+normal"] == {"neck.0.weight", "neck.0.bias", "neck.1.weight", "neck.1.bias"}
    assert found["head:seg"] == {"seg.weight", "seg.bias"}


def test_requesting_a_subset_reclassifies_shared_parts():
    found, _ = comps(TreeModel(), ["a", "b"])
    assert found["backbone"] == {"trunk.weight", "trunk.bias", "branch1.weight", "branch1.bias"}
    assert found["unused"] >= {"branch2.weight", "head_c.weight"}


def test_parameter_with_zero_gradient_still_counts_as_reached():
    model = SharedBackbone()
    with torch.no_grad():
        model.heads["a"].weight.zero_()  # gradient w.r.t. backbone through head a becomes zero
    _, graph = comps(model, ["a"])
    assert graph.param_tasks["backbone.0.weight"] == frozenset({"a"})


def test_forward_must_return_a_dict():
    with pytest.raises(UserError, match="dict"):
        discover_task_graph(nn.Conv2d(3, 1, 1), X)


def test_unknown_task_is_named():
    with pytest.raises(UserError, match="unknown task.*zz.*the model has: a, b, c"):
        discover_task_graph(SharedBackbone(), X, ["a", "zz"])
