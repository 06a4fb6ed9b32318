import pytest
import torch
from helpers import SharedNeck, TreeModel

from edgeprune.errors import UserError
from edgeprune.models.resnet import MTLResNet
from edgeprune.taskgraph.extract import extract_tasks

X = torch.randn(2, 3, 16, 16)


def test_extracted_model_returns_only_requested_tasks_with_same_values():
    model = TreeModel().eval()
    small = extract_tasks(model, ["a", "c"])
    out, ref = small(X), model(X)
    assert list(out) == ["a", "c"]
    for t in out:
        torch.testing.assert_close(out[t], ref[t], rtol=0, atol=0)


def test_extracted_model_keeps_only_parameters_the_tasks_reach():
    small = extract_tasks(SharedNeck(), ["seg"])
    assert set(dict(small.named_parameters())) == {"backbone.weight", "backbone.bias", "seg.weight", "seg.bias"}
    assert not any(k.startswith("neck") for k in small.state_dict())  # BN buffers of the neck go too


def test_extraction_of_reference_model_drops_a_head():
    model = MTLResNet({"seg": 5, "depth": 1, "normal": 3}).eval()
    small = extract_tasks(model, ["seg", "depth"])
    names = set(dict(small.named_parameters()))
    assert not any(n.startswith("heads.normal") for n in names)
    assert any(n.startswith("heads.depth") for n in names)
    torch.testing.assert_close(small(X)["depth"], model(X)["depth"])


def test_unknown_and_empty_task_lists_are_user_errors():
    with pytest.raises(UserError, match="unknown task"):
        extract_tasks(TreeModel(), ["a", "nope"])
    with pytest.raises(UserError, match="empty"):
        extract_tasks(TreeModel(), [])


def test_extraction_keeps_conv_subclasses_from_other_packages_as_layers():
    from edgeprune.masks import prunable_parameters
    from edgeprune.models.lite0 import MTLLite0

    model = MTLLite0({"seg": 5, "depth": 1, "normal": 3}).eval()
    small = extract_tasks(model, ["seg"])
    expected = {n for n in prunable_parameters(model) if not n.startswith(("heads.depth", "heads.normal"))}
    assert set(prunable_parameters(small)) == expected
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(small(x)["seg"], model(x)["seg"])


def test_output_layers_are_the_last_layers_before_each_output():
    from edgeprune.taskgraph.extract import output_layers

    small = extract_tasks(MTLResNet({"seg": 5, "depth": 1, "normal": 3}), ["seg", "depth"])
    assert output_layers(small) == {"heads.seg.classifier.weight", "heads.depth.classifier.weight"}
    assert output_layers(TreeModel()) == set()  # not traced: unknown
