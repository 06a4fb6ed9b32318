"""sweep.run under a signal: a cleanup that fails while the signal unwinds a cell is the signal,
not a failed cell, and the sweep stops instead of going on to the next cell."""

from types import SimpleNamespace

import pytest

import edgeprune.sweep.run as run
from edgeprune.contracts.sweep import SweepConfig
from edgeprune.errors import Interrupted, forget_interrupt, interrupt


@pytest.fixture(autouse=True)
def _forget():
    yield
    forget_interrupt()  # the next test starts uninterrupted


@pytest.fixture
def config(monkeypatch):
    # the dense cell is evaluated without a model: these tests are about the loop
    monkeypatch.setattr(run, "load_and_extract", lambda *a: SimpleNamespace(model=None, tasks=["digit"]))
    monkeypatch.setattr(run, "evaluate", lambda *a: {"digit": {"accuracy": 0.9}})
    doc = {"workload": "digits", "methods": {"magnitude": {}}, "sparsities": [0.5, 0.9], "finetune": {"steps": 0}}
    return SweepConfig.from_doc(doc, "s.toml")


def test_a_cleanup_that_fails_under_a_signal_stops_the_sweep(tmp_path, monkeypatch, config):
    pruned = []

    def prune(req):
        pruned.append(req.sparsity)
        interrupt(2)  # the signal arrived; the cleanup then failed with an ordinary exception
        raise FileNotFoundError("a temporary the cleanup expected")

    monkeypatch.setattr(run, "prune", prune)
    with pytest.raises(Interrupted) as caught:
        run.run_sweep(config, tmp_path / "out")
    assert caught.value.signum == 2 and pruned == [0.5]  # the 90% cell was never started
    assert not list((tmp_path / "out").glob("cells/*/cell.json"))[1:]  # only the dense cell was recorded


def test_a_swallowed_signal_still_stops_the_sweep_before_its_next_cell(tmp_path, monkeypatch, config):
    monkeypatch.setattr(run, "prune", lambda req: pytest.fail("the sweep went on to prune"))
    real = run._run_cell

    def cell(c, *args):
        if c.method == run.DENSE:
            interrupt(15)  # a finalizer swallowed the exception; only the record remains
        return real(c, *args)

    monkeypatch.setattr(run, "_run_cell", cell)
    with pytest.raises(Interrupted) as caught:
        run.run_sweep(config, tmp_path / "out")
    assert caught.value.signum == 15
