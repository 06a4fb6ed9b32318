"""costmodel: a calibration table measured on this machine has the curves compile needs and
survives a save and load."""

from edgeprune.costmodel.calibrate import calibrate
from edgeprune.costmodel.table import CostTable
from edgeprune.runtime.kernel_library import host_library


def test_calibration_table_round_trip(tmp_path):
    table = calibrate("host", host_library(), 1, budget_s=0.01)
    assert table.measured and {("kxk", "csr"), ("1x1", "bsr"), ("kxk", "nm")} <= set(table.curves)
    assert {("kxk", "csr"), ("1x1", "bsr")} <= set(table.shaped)  # the same formats at other layer shapes
    table.save(tmp_path / "t.json")
    again = CostTable.load(tmp_path / "t.json")
    assert again.ratio("csr", "kxk", 0.1) == table.ratio("csr", "kxk", 0.1)
    assert again.ratio("csr", "kxk", 0.0) == table.curves[("kxk", "csr")][0][1]  # clamps below the first point
    shape, points = table.shaped[("kxk", "csr")][0]
    assert again.ratio("csr", "kxk", points[0][0], shape) == points[0][1]


def test_shaped_curves_predict_their_own_shape_exactly_and_blend_between():
    from edgeprune.costmodel.table import LayerShape

    table = CostTable("t", True, {"layers": {"kxk": {"cin": 128, "cout": 128, "k": 3, "hw": 28}}}, 1,
                      {("kxk", "csr"): [(0.1, 0.4), (0.5, 1.5)]})  # fmt: skip
    small = LayerShape.of(128, 128, 3, 7)
    table.shaped[("kxk", "csr")] = [(small, [(0.1, 1.2), (0.5, 4.0)])]
    reference = LayerShape.of(128, 128, 3, 28)
    assert table.ratio("csr", "kxk", 0.1) == 0.4  # no shape: the reference curve
    assert table.ratio("csr", "kxk", 0.1, reference) == 0.4
    assert table.ratio("csr", "kxk", 0.1, small) == 1.2
    between = table.ratio("csr", "kxk", 0.1, LayerShape.of(128, 128, 3, 14))
    assert between is not None and 0.4 < between < 1.2
    assert abs(between - 0.8) < 1e-9  # halfway in (log2 MACs, log2 width): equal weights


def test_a_shaped_curve_without_its_reference_curve_is_refused(tmp_path):
    import json

    import pytest

    from edgeprune.errors import UserError

    doc = {"format": "edgeprune.calibration/1", "target": "t", "measured": True, "threads": 1,
           "curves": [{"kind": "kxk", "fmt": "csr", "points": [[0.1, 0.4]]}],
           "shaped": [{"kind": "1x1", "fmt": "csr", "macs": 1000, "width": 7, "points": [[0.1, 0.5]]}]}  # fmt: skip
    path = tmp_path / "t.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(UserError, match="field shaped.0 has no reference curve"):
        CostTable.load(path)
    doc["shaped"][0].update(kind="kxk", width=0)
    path.write_text(json.dumps(doc))
    with pytest.raises(UserError, match="field shaped.0.width must be an output width"):
        CostTable.load(path)
