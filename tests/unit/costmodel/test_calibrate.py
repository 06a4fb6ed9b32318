"""costmodel: a calibration table measured on this machine has the curves compile needs and
survives a save and load."""

from edgeprune.costmodel.calibrate import calibrate
from edgeprune.costmodel.table import CostTable
from edgeprune.runtime.kernel_library import host_library


def test_calibration_table_round_trip(tmp_path):
    table = calibrate("host", host_library(), 1, budget_s=0.01)
    assert table.measured and {("kxk", "csr"), ("1x1", "bsr"), ("kxk", "nm")} <= set(table.curves)
    table.save(tmp_path / "t.json")
    again = CostTable.load(tmp_path / "t.json")
    assert again.ratio("csr", "kxk", 0.1) == table.ratio("csr", "kxk", 0.1)
    assert again.ratio("csr", "kxk", 0.0) == table.curves[("kxk", "csr")][0][1]  # clamps below the first point
