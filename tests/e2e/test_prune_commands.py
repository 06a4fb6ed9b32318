"""The prune-stage commands end to end: prune writes a checkpoint and its JSON summary that
inspect and evaluate read back; inspect lists a dense model's components; the SMSP mask library
is built, listed and checked against the model it came from."""

import json

import pytest
from helpers import no_output_left, run_cli


@pytest.mark.slow
def test_prune_writes_checkpoint_and_json_summary(tmp_path, capsys):
    out_file = tmp_path / "d.ept"
    code, out, _ = run_cli(["prune", "-w", "digits", "-t", "digit,parity", "-m", "magnitude", "-s", "0.7",
                            "--scope", "global", "-o", out_file, "--json"], capsys)  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    assert doc["tasks"] == ["digit", "parity"]
    assert abs(doc["sparsity"]["overall"]["sparsity"] - 0.7) <= 0.005
    assert "prunable weights" in doc["sparsity"]["denominator"]
    assert set(doc["dense"]) == set(doc["pruned"]) == {"digit", "parity"}
    assert out_file.is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["d.ept"]

    code, out, _ = run_cli(["inspect", out_file, "--json"], capsys)
    comps = {c["component"]: c for c in json.loads(out)["components"]}
    assert comps["backbone"]["tasks"] == ["digit", "parity"]
    assert set(comps) == {"backbone", "head:digit", "head:parity"}

    code, out, _ = run_cli(["evaluate", out_file, "--json", "-o", tmp_path / "m.json"], capsys)
    assert code == 0
    assert json.loads(out)["metrics"] == doc["pruned"]
    assert json.loads((tmp_path / "m.json").read_text())["metrics"] == doc["pruned"]


def test_inspect_dense_model_lists_components_and_tasks(capsys):
    code, out, _ = run_cli(["inspect", "-w", "scenes", "--tasks", "seg,normal"], capsys)
    assert code == 0
    assert "backbone" in out and "head:seg" in out and "head:normal" in out and "head:depth" not in out


@pytest.mark.slow
def test_mask_library_add_list_and_a_foreign_entry(tmp_path, capsys):
    lib = tmp_path / "lib"
    args = ["mask-library", "add", "-t", "mod4", "--mask-library", lib, "-s", "0.5", "--finetune-steps", "3", "--json"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert abs(json.loads(out)["sparsity"] - 0.5) <= 0.005
    code, out, _ = run_cli(["mask-library", "list", "-l", lib, "--json"], capsys)
    assert [e["task"] for e in json.loads(out)["entries"]] == ["mod4"]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, _, err = run_cli(["prune", "-w", "digit-pool", "-m", "smsp", "--mask-library", lib, "-t", "parity,mod3",
                            "-s", "0.5", "-o", out_dir / "x.ept"], capsys)  # fmt: skip
    assert code == 2 and "one new task at a time" in err
    entry = next(lib.glob("*.json"))
    doc = json.loads(entry.read_text())
    doc["source_hash"] = "f" * 64
    entry.write_text(json.dumps(doc))
    code, _, err = run_cli(["prune", "-w", "digit-pool", "-m", "smsp", "--mask-library", lib, "-t", "parity", "-s",
                            "0.5", "-o", out_dir / "x.ept"], capsys)  # fmt: skip
    assert code == 2 and "another pre-trained model" in err
    assert no_output_left(out_dir)
    code, _, err = run_cli(["mask-library", "list", "-l", tmp_path / "none"], capsys)
    assert code == 2 and "mask library not found" in err
