"""Interrupted and killed runs leave no half-written output (issue 15, finding 5): SIGINT and
SIGTERM clean up and say "interrupted" (exit 130 / 143); after SIGKILL the next run sweeps the
temporary names left behind; a killed `compile --force` never leaves the path empty. Real
processes, killed at the stage named in each test."""

import json
import shutil
import signal
import subprocess
import sys
import time

import pytest
from helpers import DIGITS_90, RESNET90

pytestmark = pytest.mark.slow


def start(*args):
    return subprocess.Popen([sys.executable, "-m", "edgeprune", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def wait_for(predicate, timeout_s=120.0):
    """Poll (5 ms) until ``predicate()`` holds; False after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return False


def temporaries(directory):
    return sorted(p.name for p in directory.iterdir() if ".edgeprune-" in p.name)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_fine_tuning_cleans_up_and_says_interrupted(tmp_path, sig, code):
    out = tmp_path / "p.ept"
    proc = start("prune", "-w", "digits", "-s", "0.5", "--finetune-steps", "100000", "-o", out)
    time.sleep(6)  # well into fine-tuning (loading and scoring digits take about 3 s)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code
    assert err.strip().splitlines()[-1] == "interrupted"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_compile_writes_keeps_the_old_artifact_and_no_temporaries(checkpoints, tmp_path, sig):
    ckpt = checkpoints(**RESNET90)
    art = tmp_path / "art"
    assert subprocess.run([sys.executable, "-m", "edgeprune", "compile", ckpt, "-o", art],
                          capture_output=True).returncode == 0  # fmt: skip
    before = (art / "manifest.json").read_text()
    proc = start("compile", ckpt, "-o", art, "--force")
    assert wait_for(lambda: any(p.is_dir() for p in tmp_path.glob(".art.edgeprune-*")))  # the write stage began
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:  # it finished first: then the new artifact is whole
        json.loads((art / "manifest.json").read_text())
    else:
        assert proc.returncode == 128 + sig and err.strip().splitlines()[-1] == "interrupted"
        assert (art / "manifest.json").read_text() == before
    assert temporaries(tmp_path) == []


@pytest.mark.parametrize("delay_s", [0.0, 0.2])
def test_a_killed_force_compile_never_leaves_the_path_empty_and_the_next_run_sweeps(checkpoints, tmp_path, delay_s):
    ckpt = checkpoints(**RESNET90)
    art = tmp_path / "art"
    subprocess.run([sys.executable, "-m", "edgeprune", "compile", ckpt, "-o", art], check=True, capture_output=True)
    proc = start("compile", ckpt, "-o", art, "--force")
    assert wait_for(lambda: any(p.is_dir() for p in tmp_path.glob(".art.edgeprune-*")))
    time.sleep(delay_s)
    proc.kill()
    proc.communicate(timeout=60)
    assert (art / "manifest.json").is_file()  # the old artifact or the new one, whole
    json.loads((art / "manifest.json").read_text())
    done = subprocess.run([sys.executable, "-m", "edgeprune", "compile", ckpt, "-o", art, "--force"],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert temporaries(tmp_path) == []


def test_the_next_prune_sweeps_a_temporary_file_a_killed_prune_left(checkpoints, tmp_path):
    # What SIGKILL during the checkpoint write leaves: the temporary file beside the output.
    stale = tmp_path / ".p.ept.edgeprune-x1y2.tmp"
    stale.write_bytes(b"half a checkpoint")
    shutil.copyfile(checkpoints(**DIGITS_90), tmp_path / "other.ept")
    done = subprocess.run([sys.executable, "-m", "edgeprune", "prune", "-w", "digits", "-s", "0.5", "-o",
                           tmp_path / "p.ept"], capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert temporaries(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["other.ept", "p.ept"]


def test_two_writers_of_one_artifact_are_serialised(checkpoints, tmp_path):
    ckpt = checkpoints(**RESNET90)
    art = tmp_path / "art"
    first = start("compile", ckpt, "-o", art)
    assert wait_for(lambda: any(p.is_dir() for p in tmp_path.glob(".art.edgeprune-*")))
    second = subprocess.run([sys.executable, "-m", "edgeprune", "compile", ckpt, "-o", art, "--force"],
                            capture_output=True, text=True)  # fmt: skip
    first.communicate(timeout=120)
    assert first.returncode == 0
    # The second either waited out the first and replaced it, or was refused with a clear line.
    assert second.returncode == 0 or "another edgeprune is writing" in second.stderr, second.stderr
    assert (art / "manifest.json").is_file() and temporaries(tmp_path) == []


def test_a_sweep_stopped_by_a_signal_continues_at_the_cell_it_was_running(tmp_path):
    """Issue 12: a sweep interrupted at cell k of n continues at k; no cell is half-recorded."""
    out = tmp_path / "sweep"
    args = ["sweep", "-w", "digits", "-m", "magnitude", "-s", "0.3,0.5,0.7,0.9", "--bench-seconds", "0.1",
            "-o", out, "--json"]  # fmt: skip
    proc = start(*args)
    try:
        done = lambda: len(list(out.glob("cells/*/cell.json")))  # noqa: E731
        assert wait_for(lambda: done() >= 3, timeout_s=240), "the sweep did not reach its third cell"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "interrupted"
    recorded = done()
    assert 3 <= recorded < 5  # 5 cells: the dense one and four sparsities
    assert not [p for p in out.rglob("*") if ".edgeprune-" in p.name]  # no temporary left behind
    rerun = subprocess.run([sys.executable, "-m", "edgeprune", *map(str, args)], capture_output=True, text=True,
                           timeout=300)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    doc = json.loads(rerun.stdout)
    assert doc["cells"] == 5 and doc["failed"] == []
    # every cell with a complete record was skipped (a cell stopped mid-build has a record too and
    # is completed, not redone from scratch)
    assert doc["skipped"] >= recorded - 1
