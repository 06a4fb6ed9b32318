"""compile and bench through the CLI on the host: the artifact, its manifest and results.json;
bench refuses a library built for another CPU; an op the exporter cannot handle is named with its
layer."""

import json

import pytest
from helpers import RESNET90, run_cli

from edgeprune.contracts.manifest import Manifest
from edgeprune.contracts.results import Results
from edgeprune.export.compile import CompileRequest, compile_artifact
from edgeprune.fsio import sha256_file


@pytest.fixture
def resnet90(checkpoints):
    return checkpoints(**RESNET90)


def test_compile_and_bench_cli(resnet90, tmp_path, capsys):
    art = tmp_path / "art"
    code, out, _ = run_cli(["compile", resnet90, "-o", art, "--input-size", "96x96"], capsys)
    assert code == 0 and "Per-layer formats" in out and (art / "manifest.json").is_file()
    manifest = Manifest.read(art)
    assert manifest.check.max_rel_error_with_library < 1e-4
    assert {f.path for f in manifest.files.values()} <= {p.name for p in art.iterdir()}
    code, out, _ = run_cli(["bench", art, "--seconds", "0.3", "--json"], capsys)
    assert code == 0
    res = json.loads(out)
    assert res["energy"] is None and "not measured" in res["energy_reason"]
    assert res["latency"]["sparse"]["runs"] >= 30 and res["latency"]["dense"]["runs"] >= 30
    assert max(res["agreement"]["max_rel_error_vs_dense"].values()) < 1e-4
    assert res["memory"]["sparse_peak_rss_mib"] > 0
    written = Results.read(art / "results.json")
    assert written.ratio_p50 == res["ratio_p50"] and written.model_dump(mode="json") == res


def test_library_built_for_another_cpu_is_refused(resnet90, tmp_path, capsys):
    art = tmp_path / "art"
    compile_artifact(CompileRequest(resnet90, "host", art))
    lib = art / "libedgeprune_ort.so"
    data = bytearray(lib.read_bytes())
    data[18:20] = (183).to_bytes(2, "little")  # ELF machine: aarch64
    lib.write_bytes(bytes(data))
    manifest = json.loads((art / "manifest.json").read_text())  # as compile for a board would record it
    manifest["files"]["library"]["sha256"] = sha256_file(lib)
    (art / "manifest.json").write_text(json.dumps(manifest))
    code, _, err = run_cli(["bench", art, "--seconds", "0.1"], capsys)
    assert code == 2 and "built for aarch64" in err


@pytest.mark.slow
def test_an_op_the_exporter_cannot_handle_is_named_with_its_layer(checkpoints, tmp_path, capsys):
    """prune could not export the graph; the checkpoint records why, and compile says it."""
    ckpt = checkpoints("digit-pool", "magnitude", 0.8, model="pool-cnn")
    # 28x28 digits reach the 2x2 adaptive pool as 7x7, which ONNX cannot express.
    code, _, err = run_cli(["compile", ckpt, "-o", tmp_path / "o"], capsys)
    message = " ".join(err.split())
    assert code == 2 and "carries no model graph (ONNX export failed: op adaptive_avg_pool2d in layer backbone.11 " \
        "(AdaptiveAvgPool2d)" in message, err
    assert not (tmp_path / "o").exists()
    code, out, err = run_cli(["evaluate", ckpt, "--json"], capsys)  # the checkpoint is still of use
    assert code == 0, err
