"""The block mode: energy per inference of two models whose power draw is known (a fake board
that draws more while an inference runs), gross and net of a measured idle, in the same run."""

import threading
import time

import pytest
from power_trees import Trace, hwmon_tree

from edgeprune.bench.energy.detect import open_sensor
from edgeprune.bench.energy.measure import EnergyPlan, measure_energy

IDLE_W, BUSY_W = 2.0, 5.0


def test_energy_per_inference_gross_net_and_ratio(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPRUNE_SYSFS_ROOT", str(tmp_path))
    put = hwmon_tree(tmp_path, {"VDD_IN": IDLE_W})["VDD_IN"]
    busy = threading.Event()

    def model(ms):
        def run():
            busy.set()
            time.sleep(ms / 1e3)  # a real model releases the GIL while it runs, as sleep does
            busy.clear()
        return run

    sensor = open_sensor("auto", "ina3221", "hwmon", "VDD_IN")
    with Trace(put, lambda t: BUSY_W if busy.is_set() else IDLE_W, period_s=0.0005):
        e = measure_energy(sensor, {"sparse": model(2.0), "dense": model(4.0)}, {"sparse": 2.0, "dense": 4.0},
                           EnergyPlan(idle_s=0.5, block_s=0.3, blocks=3))  # fmt: skip
    assert e.backend == "ina3221-hwmon" and e.rail == "VDD_IN" and e.sampling_hz >= 80
    assert e.idle_power_w == pytest.approx(IDLE_W, rel=0.02)
    for m, ms in ((e.sparse, 2.0), (e.dense, 4.0)):
        assert m.blocks == 3 and m.inferences_per_block == round(300 / ms)
        per_inference_s = m.seconds_per_block / m.inferences_per_block
        assert m.gross_j == pytest.approx(BUSY_W * per_inference_s, rel=0.05)
        assert m.net_j == pytest.approx((BUSY_W - IDLE_W) * per_inference_s, rel=0.08)
        assert 0 < m.uncertainty_j < 0.1 * m.net_j
    assert e.ratio_net == pytest.approx(0.5, rel=0.1)
    assert e.ratio_gross == pytest.approx(e.sparse.gross_j / e.dense.gross_j)
