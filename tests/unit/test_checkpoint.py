"""checkpoint.py: the .ept file keeps weights, masks and metadata; a bad file is one UserError
line that names the problem."""

import json

import pytest
import torch
from safetensors.torch import save_file

from edgeprune import __version__
from edgeprune.checkpoint import load_checkpoint, rebuild_model
from edgeprune.errors import UserError

DIGITS_80 = {"workload": "digits", "method": "magnitude", "sparsity": 0.8, "tasks": ["digit", "ge5"]}


@pytest.fixture
def pruned(checkpoints):
    return checkpoints.result(**DIGITS_80), checkpoints(**DIGITS_80)


def test_round_trip_keeps_weights_masks_and_metadata(pruned):
    result, path = pruned
    ckpt = load_checkpoint(path)
    state = result.model.state_dict()
    assert set(ckpt.state) == set(state)
    assert all(torch.equal(ckpt.state[k], state[k]) for k in state)
    assert all(torch.equal(ckpt.masks.masks[k], result.masks.masks[k]) for k in result.masks.masks)
    meta = ckpt.meta
    assert meta == result.meta
    assert meta.tasks == ["digit", "ge5"]
    assert meta.method == "magnitude" and meta.settings["sparsity"] == 0.8
    assert meta.edgeprune_version == __version__
    assert len(meta.source_hash) == 64
    assert meta.metrics.pruned == result.after and meta.metrics.dense is None
    assert {str(g) for g in ckpt.masks.granularity.values()} == {"element"} == set(meta.granularity.values())


def test_rebuilt_model_computes_the_same_outputs(pruned):
    result, path = pruned
    model = rebuild_model(load_checkpoint(path))
    x = torch.randn(4, 1, 28, 28)
    ref, out = result.model.eval()(x), model(x)
    assert list(out) == ["digit", "ge5"]
    for t in out:
        torch.testing.assert_close(out[t], ref[t], rtol=0, atol=0)


def test_truncated_checkpoint_is_rejected(pruned, tmp_path):
    _, path = pruned
    bad = tmp_path / "cut.ept"
    bad.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UserError, match="corrupt or truncated"):
        load_checkpoint(bad)


def test_garbage_checkpoint_is_rejected(tmp_path):
    bad = tmp_path / "junk.ept"
    bad.write_bytes(b"\x07" * 300)
    with pytest.raises(UserError, match="not a valid edgeprune checkpoint"):
        load_checkpoint(bad)


def test_plain_safetensors_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "plain.ept"
    save_file({"w/x": torch.zeros(2)}, str(path))
    with pytest.raises(UserError, match="not an edgeprune checkpoint"):
        load_checkpoint(path)


def test_mask_without_matching_weight_is_rejected(tmp_path):
    meta = {"format": "edgeprune.checkpoint/2", "edgeprune_version": "0", "workload": "digits",
            "model": "digits-cnn", "tasks": ["digit"], "method": "magnitude", "settings": {},
            "source_hash": "0", "granularity": {}}  # fmt: skip
    path = tmp_path / "odd.ept"
    save_file({"w/a": torch.zeros(2, 2), "m/a": torch.ones(3, dtype=torch.uint8)}, str(path),
              metadata={"edgeprune": json.dumps(meta)})  # fmt: skip
    with pytest.raises(UserError, match="mask a"):
        load_checkpoint(path)


def write_meta(tmp_path, **changes):
    meta = {"format": "edgeprune.checkpoint/2", "edgeprune_version": "0", "workload": "digits",
            "model": "digits-cnn", "tasks": ["digit"], "method": "magnitude", "settings": {},
            "source_hash": "0", "granularity": {}, **changes}  # fmt: skip
    path = tmp_path / "meta.ept"
    tensors = {"w/a": torch.zeros(2), "x/inputs": torch.zeros(1, 2)}
    save_file(tensors, str(path), metadata={"edgeprune": json.dumps(meta)})
    return path


@pytest.mark.parametrize(("changes", "field"), [
    ({"tasks": "digit"}, "field tasks"), ({"settings": []}, "field settings"), ({"sparsity": "0.5"}, "field sparsity"),
    ({"metrics": {"pruned": {"digit": {"top1": "high"}}}}, "field metrics.pruned.digit.top1"),
    ({"granularity": {"a": "block:0x1"}}, "field granularity.a"), ({"tasks": []}, "field tasks"),
])  # fmt: skip
def test_metadata_field_of_the_wrong_type_is_one_error_naming_it(tmp_path, changes, field):
    with pytest.raises(UserError, match=field.replace(".", r"\.")) as exc:
        load_checkpoint(write_meta(tmp_path, **changes))
    assert "\n" not in str(exc.value)


def test_other_checkpoint_format_is_refused(tmp_path):
    with pytest.raises(UserError, match="unsupported format 'edgeprune.checkpoint/0'"):
        load_checkpoint(write_meta(tmp_path, format="edgeprune.checkpoint/0"))


def test_a_graph_record_with_an_empty_dimension_is_refused(tmp_path):
    """An input of shape [8, 3, 0, 0] reached compile's memory estimate as a division by zero."""
    graph = {"sizes": "any", "input": [3, 0, 0], "sha256": "0" * 64}
    with pytest.raises(UserError, match=r"field graph.input.1: input should be greater than or equal to 1"):
        load_checkpoint(write_meta(tmp_path, graph=graph))


def test_a_checkpoint_of_the_first_format_is_refused_by_name(tmp_path):
    """edgeprune.checkpoint/1 carried no graph: compile would need the workload's code."""
    with pytest.raises(UserError, match="format edgeprune.checkpoint/1 is no longer read: .* prune again"):
        load_checkpoint(write_meta(tmp_path, format="edgeprune.checkpoint/1"))


def test_missing_checkpoint(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_checkpoint(tmp_path / "none.ept")
