"""Issue 15 §4 (outputs) and §6 (values), one regression test per finding: every output is checked
before any work (an unwritable one fails at once, an existing one is refused without --force with
one wording for every command, a directory where a file is wanted is one line); non-finite weights
are refused naming the weight; JSON is standard; --threads, --seconds and --input-size are
bounded with the limit named."""

import json
import math
import os
import time

import pytest
import torch
from helpers import DIGITS_50, USER_WORKLOAD, no_output_left, run_cli
from safetensors import safe_open
from safetensors.torch import save_file

from edgeprune.contracts.manifest import Manifest
from edgeprune.errors import UserError
from edgeprune.export.compile import CompileRequest, compile_artifact


def strict_json(text):
    """Parse as standard JSON: NaN and Infinity, which Python's json accepts, are errors."""

    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def one_line(err):
    return len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.fixture
def checkpoint(checkpoints):
    return checkpoints(**DIGITS_50)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory, checkpoints):
    art = tmp_path_factory.mktemp("outputs") / "art"
    compile_artifact(CompileRequest(checkpoints(**DIGITS_50), "host", art))
    return art


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test at once if a prune (or the demo's prune) starts loading the model."""
    import edgeprune.prune.pipeline as pipeline

    def started(*_args, **_kwargs):
        raise AssertionError("the work started before the output was checked")

    monkeypatch.setattr(pipeline, "load_and_extract", started)


# ---- §4 Outputs ---------------------------------------------------------------------------------


def output_commands(tmp_path, checkpoint, output):
    """Each command that writes an output, writing ``output``."""
    return {
        "prune": ["prune", "-w", "digits", "-s", "0.5", "-o", output],
        "compile": ["compile", checkpoint, "-o", output],
        "evaluate -o": ["evaluate", checkpoint, "-o", output],
        "bench -o": ["bench", tmp_path / "no-artifact", "-o", output],
        "calibrate -o": ["calibrate", "--target", "nosuch", "-o", output],
        "demo -o": ["demo", "-o", output],
    }


@pytest.mark.parametrize("command", ["prune", "compile", "evaluate -o", "bench -o", "calibrate -o", "demo -o"])
def test_an_unwritable_output_fails_at_once_before_any_work(command, tmp_path, checkpoint, capsys, no_work):
    """§4: an unwritable output directory gave a traceback, and prune found out only after all its work."""
    (tmp_path / "somefile").write_text("a file, not a directory")
    output = tmp_path / "somefile" / ("x.ept" if command in ("prune", "demo -o") else "x")
    t0 = time.perf_counter()
    code, _, err = run_cli(output_commands(tmp_path, checkpoint, output)[command], capsys)
    assert time.perf_counter() - t0 < 1.0
    assert code == 2 and one_line(err), err
    assert f"cannot write {output}: {tmp_path / 'somefile'} is not a directory" in " ".join(err.split())


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a 0555 directory: access checks always pass")
def test_prune_into_a_read_only_directory_fails_at_once(tmp_path, capsys, no_work):
    """§4, as a user meets it: a directory without write permission."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        t0 = time.perf_counter()
        code, _, err = run_cli(["prune", "-w", "digits", "-s", "0.5", "-o", ro / "x.ept"], capsys)
        assert time.perf_counter() - t0 < 1.0
        assert code == 2 and one_line(err) and "is not writable" in err
    finally:
        ro.chmod(0o755)


@pytest.mark.slow
def test_prune_refuses_an_existing_file_without_force_and_replaces_it_with_force(tmp_path, capsys):
    """§4: prune silently overwrote an existing file while compile refused."""
    from edgeprune.checkpoint import load_checkpoint

    out = tmp_path / "x.ept"
    out.write_bytes(b"someone's file")
    args = ["prune", "-w", "digits", "-s", "0.5", "-o", out]
    code, _, err = run_cli(args, capsys)
    assert code == 2 and one_line(err)
    assert f"output {out} exists; use --force to replace it" in " ".join(err.split())
    assert out.read_bytes() == b"someone's file"
    code, _, err = run_cli([*args, "--force"], capsys)
    assert code == 0, err
    assert load_checkpoint(out).meta.method == "magnitude"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.ept"]  # no temporary names left


@pytest.mark.parametrize("command", ["prune", "compile", "evaluate -o", "bench -o", "calibrate -o", "demo -o"])
def test_every_command_refuses_an_existing_output_with_the_same_words(command, tmp_path, checkpoint, capsys):
    """§4: compile said "output directory X exists"; bench -o, evaluate -o, calibrate -o and demo -o
    overwrote; now all say the same."""
    output = tmp_path / ("x.ept" if command in ("prune", "demo -o") else "out")
    if command == "compile":
        output.mkdir()
    else:
        output.write_text("{}")
    code, _, err = run_cli(output_commands(tmp_path, checkpoint, output)[command], capsys)
    assert code == 2 and one_line(err), err
    assert " ".join(err.split()) == f"error: output {output} exists; use --force to replace it"


def test_bench_output_onto_a_directory_is_one_line(artifact, tmp_path, capsys):
    """§4: bench -o onto a directory gave a traceback (after the timing)."""
    (tmp_path / "dir").mkdir()
    code, _, err = run_cli(["bench", artifact, "--seconds", "0.1", "-o", tmp_path / "dir"], capsys)
    assert code == 2 and one_line(err), err
    assert f"output {tmp_path / 'dir'} is a directory; give a file name" in " ".join(err.split())


@pytest.mark.slow
def test_bench_replaces_its_own_results_but_not_a_named_file(artifact, tmp_path, capsys):
    """The default ARTIFACT/results.json is replaced on every run (re-benching is the normal loop);
    a file named with -o only with --force."""
    for _ in range(2):
        code, _, err = run_cli(["bench", artifact, "--seconds", "0.1"], capsys)
        assert code == 0, err
    strict_json((artifact / "results.json").read_text())
    named = tmp_path / "r.json"
    assert run_cli(["bench", artifact, "--seconds", "0.1", "-o", named], capsys)[0] == 0
    code, _, err = run_cli(["bench", artifact, "--seconds", "0.1", "-o", named], capsys)
    assert code == 2 and "exists; use --force" in err
    code, _, err = run_cli(["bench", artifact, "--seconds", "0.1", "-o", named, "--force"], capsys)
    assert code == 0, err


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_a_file_where_an_artifact_directory_should_go_is_not_called_a_directory(force, tmp_path, checkpoint, capsys):
    """§4: "output directory exists" was said of a file."""
    (tmp_path / "f").write_text("a file")
    code, _, err = run_cli(["compile", checkpoint, "-o", tmp_path / "f", *force], capsys)
    assert code == 2 and one_line(err), err
    assert f"output {tmp_path / 'f'} exists and is not a directory" in " ".join(err.split())
    assert "output directory" not in err
    assert (tmp_path / "f").read_text() == "a file"


def test_compile_force_replaces_only_an_artifact(tmp_path, checkpoint, capsys):
    """--force replaces an artifact, never a directory of other files (compile -o ~ --force)."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    code, _, err = run_cli(["compile", checkpoint, "-o", tmp_path / "mine", "--force"], capsys)
    assert code == 2 and one_line(err) and "is a directory that is not an edgeprune artifact" in " ".join(err.split())
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


# ---- §6 Values ----------------------------------------------------------------------------------


def nan_weights(path):
    """The shipped digits-cnn weights with one NaN in backbone.0.weight."""
    from edgeprune.workload.registry import build_model, resolve_workload

    state = {k: v.detach().clone().contiguous() for k, v in build_model(resolve_workload("digits"), None, None)
             .state_dict().items()}  # fmt: skip
    state["backbone.0.weight"].view(-1)[4] = float("nan")
    save_file(state, str(path))
    return path


def test_nan_weights_are_refused_at_prune_naming_the_weight(tmp_path, capsys):
    """§6: NaN/Inf weights were accepted (evaluate printed chance-level metrics with exit 0)."""
    weights = nan_weights(tmp_path / "nan.safetensors")
    (tmp_path / "out").mkdir()
    code, _, err = run_cli(["prune", "-w", "digits", "-s", "0.5", "--weights", weights, "-o",
                            tmp_path / "out" / "x.ept"], capsys)  # fmt: skip
    assert code == 2 and one_line(err), err
    assert "weight backbone.0.weight has 1 non-finite value (NaN/Inf)" in err
    assert no_output_left(tmp_path / "out")
    code, _, err = run_cli(["evaluate", "-w", "digits", "--weights", weights], capsys)
    assert code == 2 and "weight backbone.0.weight has 1 non-finite value" in err


@pytest.mark.slow
def test_weights_that_fine_tuning_made_non_finite_are_not_written(tmp_path, capsys):
    """§6: the weights after fine-tuning are checked too: a diverged run writes no checkpoint."""
    (tmp_path / "out").mkdir()
    code, _, err = run_cli(["prune", "-w", "digits", "-s", "0.5", "--finetune-steps", "3", "--lr", "1e38",
                            "--optimizer", "sgd", "-o", tmp_path / "out" / "x.ept"], capsys)  # fmt: skip
    assert code == 2 and one_line(err), err
    assert "fine-tuning diverged: weight" in err and "try a lower --lr" in err
    assert no_output_left(tmp_path / "out")


def test_a_checkpoint_with_a_nan_weight_is_refused_at_compile(checkpoints, tmp_path, capsys):
    """§6: compile wrote NaN into manifest.json (not valid JSON)."""
    ckpt = checkpoints.copy(tmp_path / "nan.ept", **DIGITS_50)
    with safe_open(str(ckpt), framework="pt") as fh:
        meta = fh.metadata()
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    tensors["w/backbone.3.weight"].view(-1)[7] = float("inf")
    save_file(tensors, str(ckpt), metadata=meta)
    code, _, err = run_cli(["compile", ckpt, "-o", tmp_path / "art"], capsys)
    assert code == 2 and one_line(err), err
    assert "weight backbone.3.weight" in err and "non-finite" in err
    assert not (tmp_path / "art").exists()


def test_compile_never_writes_nan_into_a_manifest(artifact):
    """§6: a manifest (or results file) is standard JSON; a non-finite number is refused naming the
    field rather than written as NaN."""
    manifest = Manifest.read(artifact)
    strict_json((artifact / "manifest.json").read_text())
    check = manifest.check.model_copy(update={"max_rel_error_fallback": math.nan})
    broken = manifest.model_copy(update={"check": check})
    with pytest.raises(UserError, match=r"field check\.max_rel_error_fallback is nan"):
        broken.to_json()


def test_json_summaries_are_standard_when_a_metric_is_nan(tmp_path, capsys):
    """§6: --json summaries and evaluate -o wrote NaN when a workload's metric was NaN; now such a
    number is null, and delta_t null comes with its reason."""
    from edgeprune.workload.weights import save_state

    source = USER_WORKLOAD.replace('Metric("top1", top1, True)', 'Metric("top1", lambda p, t: float("nan"), True)')
    ns: dict = {"WEIGHTS": None}
    exec(source, ns)
    torch.manual_seed(0)
    save_state(ns["TwoTask"](), tmp_path / "w.safetensors", half=False)
    wl = tmp_path / "nan_metric.py"
    wl.write_text(source.replace("WEIGHTS)", f"{str(tmp_path / 'w.safetensors')!r})"))
    code, out, err = run_cli(["prune", "-w", f"{wl}:WORKLOAD", "-s", "0.5", "-o", tmp_path / "x.ept", "--json"],
                             capsys)  # fmt: skip
    assert code == 0, err
    doc = strict_json(out)
    assert doc["delta_t"] is None and "not a finite number" in doc["delta_t_reason"]
    assert doc["pruned"]["a"]["top1"] is None
    code, out, err = run_cli(["evaluate", tmp_path / "x.ept", "-w", f"{wl}:WORKLOAD", "--json", "-o",
                              tmp_path / "m.json"], capsys)  # fmt: skip
    assert code == 0, err
    assert strict_json(out)["metrics"]["a"]["top1"] is None
    assert strict_json((tmp_path / "m.json").read_text())["metrics"]["b"]["top1"] is None


def threads_commands(tmp_path, checkpoint):
    return {
        "prune": ["prune", "-w", "digits", "-s", "0.5", "-o", tmp_path / "x.ept"],
        "evaluate": ["evaluate", checkpoint],
        "demo": ["demo"],
        "mask-library add": ["mask-library", "add", "-t", "parity", "-l", tmp_path / "lib"],
        "bench": ["bench", tmp_path / "no-artifact"],
        "calibrate": ["calibrate", "--target", "nosuch"],
    }


@pytest.mark.parametrize("command", ["prune", "evaluate", "demo", "mask-library add", "bench", "calibrate"])
def test_ten_thousand_threads_are_refused_at_once_naming_the_limit(command, tmp_path, checkpoint, capsys,
                                                                   monkeypatch):  # fmt: skip
    """§6: --threads 10000 started about 18,500 threads; the machine's load went past 1,000."""

    def set_threads(n):
        raise AssertionError(f"{n} threads were set")

    monkeypatch.setattr(torch, "set_num_threads", set_threads)
    limit = (os.cpu_count() or 1) * 4
    t0 = time.perf_counter()
    code, _, err = run_cli([*threads_commands(tmp_path, checkpoint)[command], "--threads", "10000"], capsys)
    assert time.perf_counter() - t0 < 1.0
    assert code == 2 and one_line(err), err
    assert f"--threads 10000 is more than this machine can use: at most {limit}" in " ".join(err.split())
    assert not (tmp_path / "x.ept").exists() and not (tmp_path / "lib").exists()


@pytest.mark.parametrize(("size", "message"), [
    ("99999x99999", "input size 99999x99999: model digits-cnn runs only at 28x28 (its graph fixes the input size"),
    ("9x9", "input size 9x9: model digits-cnn runs only at 28x28"),
    ("32x32", "input size 32x32: model digits-cnn runs only at 28x28"),
    ("0x28", "--input-size 0x28: each side must be at least 1"),
])  # fmt: skip
def test_input_sizes_out_of_the_models_range_are_one_line(size, message, checkpoint, tmp_path, capsys):
    """§6: --input-size 99999x99999 was a traceback; 9x9 gave a matrix-shape message. digits-cnn
    flattens a fixed-size feature map, so its carried graph runs at 28x28 alone (the memory
    estimate and the smallest size are tested on graphs that take any size: test_input_size.py,
    and test_cli_bad_input.py for mtl-resnet at 99999x99999)."""
    code, _, err = run_cli(["compile", checkpoint, "-o", tmp_path / "art", "--input-size", size], capsys)
    assert code == 2 and one_line(err), err
    assert message in " ".join(err.split())
    assert no_output_left(tmp_path)


def test_demo_checks_its_input_size_before_pruning(capsys, no_work):
    """The demo refuses an input size its model cannot take before minutes of pruning."""
    code, _, err = run_cli(["demo", "--input-size", "99999x99999"], capsys)
    assert code == 2 and one_line(err) and "is too large for model mtl-resnet" in err


@pytest.mark.parametrize("seconds", ["nan", "inf", "0", "-1", "1e9"])
def test_bench_seconds_must_be_a_finite_positive_budget(seconds, artifact, capsys):
    """§6: bench --seconds nan was accepted."""
    code, _, err = run_cli(["bench", artifact, "--seconds", seconds], capsys)
    assert code == 2 and one_line(err), err
    assert "--seconds must be positive and at most 3600" in err


def test_demo_bench_seconds_and_verify_samples_are_bounded(artifact, capsys, no_work):
    code, _, err = run_cli(["demo", "--bench-seconds", "nan"], capsys)
    assert code == 2 and "--bench-seconds must be positive and at most 3600" in err
    code, _, err = run_cli(["verify", artifact, "--samples", "100000"], capsys)
    assert code == 2 and "--samples must be between 1 and 1000" in err
