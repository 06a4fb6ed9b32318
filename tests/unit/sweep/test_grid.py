"""sweep.grid: the cells a config names, their keys, and the settings checked before any work."""

import pytest

from edgeprune.contracts.sweep import SweepConfig
from edgeprune.errors import UserError
from edgeprune.sweep.grid import cells


def grid(**doc):
    return cells(SweepConfig.from_doc({"workload": "digits", **doc}, "s.toml"))


def test_the_dense_cell_comes_first_then_method_x_granularity_x_sparsity():
    got = grid(methods={"magnitude": {}, "nm": {}}, sparsities=[0.5, 0.9], granularities=["element", "block:4x1"])
    assert [c.label for c in got] == ["dense", "magnitude 50% element", "magnitude 90% element",
                                      "magnitude 50% block:4x1", "magnitude 90% block:4x1",
                                      "nm 50%"]  # fmt: skip
    # nm fixes its own sparsity (2:4) and granularity: one cell
    assert len({c.key for c in got}) == len(got)


def test_a_key_depends_on_the_settings_only():
    a = grid(methods={"magnitude": {"scope": "global"}, "snip": {}}, sparsities=[0.5])
    b = grid(methods={"snip": {}, "magnitude": {"scope": "global"}}, sparsities=[0.5], targets=["host", "rpi4"])
    assert {c.key for c in a} == {c.key for c in b}  # order and targets do not change a cell
    c = grid(methods={"magnitude": {"scope": "layer"}}, sparsities=[0.5])
    assert c[1].key not in {x.key for x in a}


def test_a_method_may_set_its_own_finetune_budget():
    (_, magnitude, adapmtl) = grid(methods={"magnitude": {}, "adapmtl": {"finetune_steps": 0, "train_steps": 10}},
                                   sparsities=[0.5], finetune={"steps": 30})  # fmt: skip
    assert magnitude.settings.finetune["steps"] == 30 and adapmtl.settings.finetune["steps"] == 0
    assert "finetune_steps" not in adapmtl.settings.options and adapmtl.settings.options["train_steps"] == 10


@pytest.mark.parametrize(("doc", "message"), [
    ({"methods": {"magnitude": {"finetune_steps": -1}}}, "methods.magnitude: finetune_steps must be a whole number"),
    ({"methods": {"magnitude": {}}, "sparsities": [0.5, 0.5]}, "two cells have the same settings"),
    ({"methods": {"nm": {}}, "granularities": ["element"]}, "granularities: none of the methods takes"),
    ({"methods": {"random": {"pattern": "2:4"}}}, "methods.random: option --pattern does not apply"),
])  # fmt: skip
def test_a_bad_grid_is_one_line(doc, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(".", r"\.")):
        grid(**doc)
