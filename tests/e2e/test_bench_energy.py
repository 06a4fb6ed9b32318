"""bench measures energy with the sensor it finds (here a RAPL counter in a recorded tree whose
value a thread advances), records it in results.json, and stops with one line, writing nothing,
when the sensor vanishes mid-run."""

import json
import shutil
import threading

import pytest
from helpers import run_cli
from power_trees import RaplTree, Trace

from edgeprune.contracts.results import Results


@pytest.fixture
def art(digits_host_artifact, tmp_path):
    copy = tmp_path / "art"
    shutil.copytree(digits_host_artifact, copy)
    return copy


@pytest.fixture
def rapl(tmp_path, monkeypatch):
    root = tmp_path / "root"
    monkeypatch.setenv("EDGEPRUNE_SYSFS_ROOT", str(root))
    return RaplTree(root)


def test_bench_with_a_sensor_records_energy(art, rapl, capsys):
    with Trace(rapl.put, lambda t: 10.0):
        code, out, err = run_cli(["bench", art, "--seconds", "0.3", "--idle-seconds", "0.3", "--block-seconds", "0.2",
                                  "--energy-blocks", "2"], capsys)  # fmt: skip
    assert code == 0, err
    r = Results.read(art / "results.json")
    e = r.energy
    assert e is not None and r.energy_reason == ""
    assert e.backend == "rapl" and e.rail == "package-0" and e.sampling_hz > 50
    assert e.idle_power_w == pytest.approx(10.0, rel=0.05)
    assert e.sparse.gross_j == pytest.approx(10.0 * e.sparse.seconds_per_block / e.sparse.inferences_per_block,
                                             rel=0.05)  # fmt: skip
    assert abs(e.sparse.net_j) < 0.1 * e.sparse.gross_j  # constant power: nothing above idle
    assert "energy (rapl, package-0" in out and "sparse/dense energy" in out


def test_no_sensor_is_recorded_as_not_measured(art, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EDGEPRUNE_SYSFS_ROOT", str(tmp_path))
    code, out, _ = run_cli(["bench", art, "--seconds", "0.1", "--json"], capsys)
    res = json.loads(out)
    assert code == 0 and res["energy"] is None
    assert res["energy_reason"].startswith("not measured: no power sensor found (no RAPL package domains under")


def test_a_sensor_that_vanishes_mid_run_stops_bench_and_writes_nothing(art, rapl, capsys):
    counter = rapl.dir / "energy_uj"
    gone = threading.Timer(0.6, rapl.remove)
    with Trace(rapl.put, lambda t: 10.0):
        gone.start()
        code, _, err = run_cli(["bench", art, "--seconds", "0.1", "--idle-seconds", "2"], capsys)
        gone.join()
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("error: energy sensor rapl failed during the run: package-0: "
                                                   f"cannot read {counter}")  # fmt: skip
    assert not (art / "results.json").exists()


def test_energy_options_are_checked_before_any_work(art, capsys):
    code, _, err = run_cli(["bench", art, "--energy", "watts"], capsys)
    assert code == 2 and "--energy must be one of auto, none" in err
    code, _, err = run_cli(["bench", art, "--energy-blocks", "0"], capsys)
    assert code == 2 and "--energy-blocks must be between 2 and 100" in " ".join(err.split())
