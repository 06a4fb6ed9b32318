"""edgeprune sweep: every cell of a small real grid (digits, two methods, three sparsities, the
host: the shared digits_sweep fixture) is pruned, evaluated, compiled and benched; the dense
model is a cell; a re-run skips what is done, an interrupted sweep continues at the cell it
stopped at, a failed cell is recorded and the sweep goes on; bad configs are one line, exit 2,
before any work."""

import json

import pytest
from helpers import run_cli

from edgeprune.contracts.results import Results
from edgeprune.contracts.sweep import BenchSettings, CellRecord, SweepConfig, SweepIndex
from edgeprune.sweep.run import SweepHooks, run_sweep


@pytest.mark.slow
def test_every_cell_is_pruned_compiled_and_benched_and_the_dense_model_is_one(digits_sweep):
    _, out, summary = digits_sweep
    index = SweepIndex.read(out / "sweep.json")
    assert len(index.cells) == 7 and summary.skipped == 0 and not summary.failed
    records = [CellRecord.read(out / "cells" / k / "cell.json") for k in index.cells]
    dense, pruned = records[0], records[1:]
    assert dense.settings.method == "dense" and dense.checkpoint is None and dense.metrics["digit"]["top1"] > 0.5
    assert sorted((r.settings.method, r.settings.sparsity) for r in pruned) == [
        ("magnitude", 0.5), ("magnitude", 0.7), ("magnitude", 0.9),
        ("snip", 0.5), ("snip", 0.7), ("snip", 0.9)]  # fmt: skip
    for r in pruned:
        assert r.status == "done" and (out / "cells" / r.key / "model.ept").is_file()
        assert abs(r.sparsity - r.settings.sparsity) <= 0.005 and r.delta_t is not None
        (build,) = r.builds
        assert build.target == "host" and build.status == "done"
        results = Results.read(out / "cells" / r.key / build.results)
        assert results.latency["dense"].runs > 0 and results.latency["sparse"].runs > 0


@pytest.mark.slow
def test_a_rerun_skips_the_cells_done(digits_sweep, capsys):
    config, out, _ = digits_sweep
    code, stdout, err = run_cli(["sweep", config, "-o", out, "--json"], capsys)
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["cells"] == 7 and doc["skipped"] == 7 and doc["failed"] == []
    assert all(r["speedup_p50"]["host/onnxruntime"].endswith("x") for r in doc["results"][1:])


@pytest.mark.slow
def test_an_interrupted_sweep_continues_at_the_cell_it_stopped_at(digits_sweep, tmp_path):
    config, out, _ = digits_sweep
    index = SweepIndex.read(out / "sweep.json")
    # A sweep stopped during its third cell: the first two are done, the third has no record.
    (out / "cells" / index.cells[2] / "cell.json").unlink()
    (out / "cells" / index.cells[3] / "cell.json").unlink()
    started = []

    def stop_at_fourth(i, n, cell, skipped):
        started.append((i, skipped))
        if i == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(SweepConfig.from_toml(config), out, hooks=SweepHooks(cell=stop_at_fourth))
    assert started == [(0, True), (1, True), (2, False), (3, False)]
    assert (out / "cells" / index.cells[2] / "cell.json").is_file()  # cell 3 was finished
    summary = run_sweep(SweepConfig.from_toml(config), out)
    assert summary.skipped == 6 and not summary.failed  # only the fourth ran again


@pytest.mark.slow
def test_a_failed_cell_is_recorded_and_the_sweep_goes_on(tmp_path, capsys):
    """pool-cnn cannot be exported to ONNX: its cells prune, and their compile fails."""
    code, stdout, err = run_cli(["sweep", "-w", "digit-pool", "--model", "pool-cnn", "-t", "parity", "-m", "magnitude",
                                 "-s", "0.5", "--targets", "host", "-o", tmp_path / "r", "--json"], capsys)  # fmt: skip
    assert code == 1, err
    doc = json.loads(stdout)
    assert doc["cells"] == 2 and len(doc["failed"]) == 1
    record = CellRecord.read(tmp_path / "r" / "cells" / doc["failed"][0] / "cell.json")
    assert record.status == "done" and record.builds[0].status == "failed"
    assert "carries no model graph" in record.builds[0].error


@pytest.mark.parametrize(("config", "message"), [
    ('workload = "digits"\nsparsity = [0.5]\n[methods.magnitude]\n',
     "unknown key sparsity; known: workload, model, tasks, methods, sparsities"),
    ('workload = "digits"\n[methods.magnitude]\nfusion = "vote"\n',
     "methods.magnitude: option --fusion does not apply to method 'magnitude'"),
    ('workload = "digits"\n[methods.nosuch]\n', "methods.nosuch: unknown method 'nosuch'"),
    ('workload = "digits"\nsparsities = [1.5]\n[methods.magnitude]\n', "sparsity 1.5 is outside [0, 1)"),
    ('workload = "digits"\ntargets = ["moon"]\n[methods.magnitude]\n', "moon"),
    ('workload = "digits"\ntasks = ["nope"]\n[methods.magnitude]\n', "task(s) nope not in workload 'digits'"),
    ('workload = "digits"\n[bench]\nsecs = 1\n[methods.magnitude]\n', "unknown key bench.secs; known: seconds"),
    ("workload = [", "not valid TOML"),
    ('"[/x]" = 1\nworkload = "digits"\n[methods.magnitude]\n', "unknown key [/x]"),  # not read as markup
    ('workload = "digits"\n[methods.magnitude]\nscope = 1979-05-27\n',
     "option --scope: datetime.date(1979, 5, 27) is not str"),
], ids=["unknown key", "foreign option", "unknown method", "sparsity", "target", "task", "bench key",
        "toml", "markup", "date"])  # fmt: skip
def test_a_bad_config_is_one_line_before_any_work(config, message, tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(config)
    code, _, err = run_cli(["sweep", path, "-o", tmp_path / "out"], capsys)
    assert code == 2 and message in " ".join(err.split()), err
    assert not (tmp_path / "out").exists()


def test_an_existing_directory_that_is_not_a_sweep_is_refused_without_force(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep me")
    code, _, err = run_cli(["sweep", "-w", "digits", "-m", "magnitude", "-o", tmp_path / "out"], capsys)
    assert code == 2 and "holds no sweep.json" in err and "--force" in err
    assert (tmp_path / "out" / "mine.txt").read_text() == "keep me"


@pytest.mark.slow
def test_a_board_target_is_compiled_and_not_benched_here(tmp_path, capsys):
    code, stdout, err = run_cli(["sweep", "-w", "digits", "-m", "magnitude", "-s", "0.5", "--targets", "rpi4",
                                 "-o", tmp_path / "r", "--json"], capsys)  # fmt: skip
    assert code == 0, err
    key = json.loads(stdout)["results"][1]["key"]
    (build,) = CellRecord.read(tmp_path / "r" / "cells" / key / "cell.json").builds
    assert build.status == "not benched" and "built for aarch64" in build.error
    assert (tmp_path / "r" / "cells" / key / build.artifact / "manifest.json").is_file()


@pytest.mark.slow
def test_changing_the_bench_settings_rebenches_without_pruning_again(digits_sweep):
    config, out, _ = digits_sweep
    index = SweepIndex.read(out / "sweep.json")
    checkpoints = {k: (out / "cells" / k / "model.ept").stat().st_mtime_ns for k in index.cells[1:]}
    changed = SweepConfig.from_toml(config).model_copy(update={"bench": BenchSettings(seconds=0.05, threads=1)})
    summary = run_sweep(changed, out)
    assert summary.skipped == 1 and not summary.failed  # only the dense cell has no build
    for key, mtime in checkpoints.items():
        assert (out / "cells" / key / "model.ept").stat().st_mtime_ns == mtime, "a cell was pruned again"
        (build,) = CellRecord.read(out / "cells" / key / "cell.json").builds
        assert build.bench.seconds == 0.05
