import json

from conftest import run_cli


def test_demo_extracts_two_tasks_prunes_to_ninety_percent_and_reports(tmp_path, capsys):
    out = tmp_path / "demo.ept"
    code, stdout, err = run_cli(["demo", "--finetune-steps", "4", "--json", "-o", out], capsys)
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["tasks"] == ["seg", "depth"]
    assert abs(doc["sparsity"]["overall"]["sparsity"] - 0.9) <= 0.005
    assert {c["name"] for c in doc["sparsity"]["components"]} == {"backbone", "head:seg", "head:depth"}
    assert set(doc["dense"]) == {"seg", "depth"} and isinstance(doc["delta_t"], float)
    assert out.is_file()


def test_demo_prints_a_human_summary(capsys):
    code, stdout, _ = run_cli(["demo", "--finetune-steps", "1"], capsys)
    assert code == 0
    assert "the normal head is gone" in stdout and "ΔT" in stdout and "90.0" in stdout
