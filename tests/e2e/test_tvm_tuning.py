"""`compile --backend tvm --tune-trials N --tuning-db DIR`: MetaSchedule tunes the dense
functions on this machine into a database that later compiles for the same target apply; a
database for another target, tuning for another machine, and tuning options with the ONNX
Runtime backend are each one line, exit 2, nothing written."""

import json
import subprocess
import sys

import pytest
from helpers import DIGITS_90, run_cli

pytest.importorskip("tvm", reason="the TVM backend's tests need apache-tvm (pip install -e '.[dev]')")
pytest.importorskip("xgboost", reason="MetaSchedule's cost model needs xgboost (pip install -e '.[dev]')")


@pytest.mark.slow
def test_a_database_tuned_here_is_applied_by_later_compiles(checkpoints, tmp_path, capsys):
    db, ckpt = tmp_path / "db", checkpoints(**DIGITS_90)
    # the command as a user runs it, in its own process (MetaSchedule starts worker processes)
    done = subprocess.run([sys.executable, "-m", "edgeprune", "compile", ckpt, "--backend", "tvm", "--tune-trials",
                           "4", "--tuning-db", db, "-o", tmp_path / "tuned", "--json"],
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr
    first = json.loads(done.stdout)  # MetaSchedule's tables went to stderr, not into the JSON
    assert first["tuning"].startswith(f"MetaSchedule database {db}")
    assert json.loads((db / "target.json").read_text())["kind"] == "llvm"
    assert (db / "database_tuning_record.json").read_text().strip()  # records were written
    # a later compile applies the records without tuning again; its outputs still match
    code, out, err = run_cli(["compile", ckpt, "--backend", "tvm", "--tuning-db", db, "-o", tmp_path / "again",
                              "--json"], capsys)  # fmt: skip
    again = json.loads(out)
    assert code == 0 and again["tuning"] == first["tuning"]
    dense_tuned = int(again["tuning"].split(" and ")[-1].split()[0])
    assert dense_tuned >= 1  # the dense module's convolutions took their tuned schedules
    assert again["check"]["max_rel_error_with_library"] < 1e-5 and again["check"]["max_rel_error_dense_module"] < 1e-5


def compile_fails(args, checkpoints, tmp_path, capsys):
    code, _, err = run_cli(["compile", checkpoints(**DIGITS_90), *args, "-o", tmp_path / "art"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and not (tmp_path / "art").exists()
    return err


def test_a_database_tuned_for_another_target_is_refused(checkpoints, tmp_path, capsys):
    db = tmp_path / "db"
    db.mkdir()
    (db / "target.json").write_text(json.dumps({"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a72"}))
    err = compile_fails(["--backend", "tvm", "--tuning-db", db], checkpoints, tmp_path, capsys)
    assert "was tuned for another target (aarch64-linux-gnu cortex-a72)" in err


@pytest.mark.parametrize(("args", "message"), [
    (["--backend", "tvm", "--tune-trials", "4", "--target", "rpi4"], "compile with --tune-trials on the board"),
    (["--tune-trials", "4"], "apply to --backend tvm, not onnxruntime"),
])  # fmt: skip
def test_tuning_where_it_cannot_be_done_is_refused(args, message, checkpoints, tmp_path, capsys):
    assert message in compile_fails(args, checkpoints, tmp_path, capsys)


def test_a_directory_that_is_not_a_database_is_refused(checkpoints, tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "x.txt").write_text("mine")
    err = compile_fails(["--backend", "tvm", "--tuning-db", tmp_path / "notes"], checkpoints, tmp_path, capsys)
    assert "is not an edgeprune tuning database" in err


def test_a_damaged_database_is_one_line(checkpoints, tmp_path, capsys):
    from edgeprune.export.backends.tvm.target import tvm_target
    from edgeprune.export.backends.tvm.tuning import RECORDS, target_json
    from edgeprune.targets import load_target

    db = tmp_path / "db"
    db.mkdir()
    (db / "target.json").write_text(target_json(tvm_target(load_target("host"))))
    for name in RECORDS:
        (db / name).write_text('[0, [["GetSBlock", [], ["conv')  # cut off mid-record, as a killed tune leaves it
    err = compile_fails(["--backend", "tvm", "--tuning-db", db], checkpoints, tmp_path, capsys)
    assert f"tuning database {db} cannot be read" in err
