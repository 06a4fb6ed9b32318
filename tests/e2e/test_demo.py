"""edgeprune demo: the whole pipeline on scenes, from extracting two tasks to timing the compiled
model against the dense one."""

import json

import pytest
from helpers import run_cli

pytestmark = pytest.mark.slow  # each runs the whole demo: 2.5-4 s


def test_demo_extracts_two_tasks_prunes_to_ninety_percent_and_reports(tmp_path, capsys):
    out = tmp_path / "demo.ept"
    code, stdout, err = run_cli(["demo", "--finetune-steps", "4", "--json", "-o", out, "--input-size", "96x96",
                                 "--bench-seconds", "0.3", "--report", tmp_path / "rep"], capsys)  # fmt: skip
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["tasks"] == ["seg", "depth"]
    assert abs(doc["sparsity"]["overall"]["sparsity"] - 0.9) <= 0.005
    assert {c["name"] for c in doc["sparsity"]["components"]} == {"backbone", "head:seg", "head:depth"}
    assert set(doc["dense"]) == {"seg", "depth"} and isinstance(doc["delta_t"], float)
    assert out.is_file()
    # The demo goes on: compiled for this machine and timed against the dense model.
    assert sum(doc["compile"]["formats"].values()) >= 10 and doc["compile"]["input_size"] == [96, 96]
    bench = doc["bench"]
    p50 = {kind: bench["latency"][kind]["p50_ms"] for kind in ("sparse", "dense")}
    assert bench["speedup_p50"] == pytest.approx(p50["dense"] / p50["sparse"]) and bench["energy"] is None
    assert max(bench["agreement"]["max_rel_error_vs_dense"].values()) < 1e-4
    # ... and ends with a report of what it ran.
    assert doc["report"] == str(tmp_path / "rep" / "index.html")
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "magnitude 90%" in md and "edgeprune prune -w scenes -t seg,depth -m magnitude -s 0.9" in md
    assert (tmp_path / "rep" / "front-host-onnxruntime.png").is_file()


def test_demo_prints_a_human_summary(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default report directory is ./demo-report
    code, stdout, _ = run_cli(["demo", "--finetune-steps", "1", "--bench-seconds", "0.3"], capsys)
    assert code == 0
    assert "report: demo-report/index.html" in stdout and (tmp_path / "demo-report" / "index.html").is_file()
    code, stdout, _ = run_cli(["demo", "--finetune-steps", "1", "--bench-seconds", "0.3"], capsys)
    assert code == 0, "a second demo replaces the report the first one wrote"
    assert "the normal head is gone" in stdout and "ΔT" in stdout and "90.0" in stdout
    assert "compiled for this machine at 256x256" in stdout and "lower p50 latency than the dense model" in stdout
