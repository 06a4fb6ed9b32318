"""edgeprune compile and bench on the host: the artifact's every task output matches the
masked PyTorch model (with the kernel library and through the fallback), formats follow the
policy, and bad input gets one line and exit code 2 with nothing written."""

import json

import numpy as np
import onnx
import pytest
import torch
from conftest import run_cli

from edgeprune.checkpoint import load_checkpoint, masked_model
from edgeprune.contracts.manifest import Manifest
from edgeprune.contracts.results import Results
from edgeprune.export.compile import CompileRequest, compile_artifact
from edgeprune.prune.pipeline import PruneRequest, prune, write_checkpoint
from edgeprune.runtime.kernel_library import host_library, session
from edgeprune.workload.registry import resolve_workload


def pruned(tmp_path_factory, workload, model, method, sparsity, **options):
    path = tmp_path_factory.mktemp("ckpt") / f"{model}.ept"
    req = PruneRequest(workload, method, sparsity, model=model, options=options, evaluate_before=False)
    write_checkpoint(prune(req), path)
    return path


@pytest.fixture(scope="module")
def resnet90(tmp_path_factory):
    return pruned(tmp_path_factory, "scenes", "mtl-resnet", "magnitude", 0.9, scope="global")


@pytest.fixture(scope="module")
def lite90(tmp_path_factory):
    return pruned(tmp_path_factory, "scenes", "mtl-lite0", "magnitude", 0.9, scope="layer")


@pytest.fixture(scope="module")
def resnet24(tmp_path_factory):
    return pruned(tmp_path_factory, "scenes", "mtl-resnet", "nm", None)


@pytest.fixture(scope="module")
def filters50(tmp_path_factory):
    return pruned(tmp_path_factory, "scenes", "mtl-resnet", "l1-filter", 0.5)


def masked_torch_outputs(ckpt_path, x):
    ckpt = load_checkpoint(ckpt_path)
    with torch.no_grad():
        out = masked_model(ckpt)(torch.from_numpy(x))
    return {t: out[t].numpy() for t in ckpt.meta.tasks}


def assert_matches_torch(artifact, ckpt_path):
    manifest = Manifest.read(artifact)
    x = resolve_workload(load_checkpoint(ckpt_path).meta.workload).example()[:2].numpy()
    want = masked_torch_outputs(ckpt_path, x)
    for library in (host_library(), None):
        got = session(artifact / "model.onnx", 1, library).run(None, {"input": x})
        for task, value in zip(manifest.tasks, got, strict=True):
            np.testing.assert_allclose(value, want[task], rtol=1e-4, atol=1e-5, err_msg=f"{task} library={library}")


@pytest.mark.parametrize("ckpt", ["resnet90", "lite90"])
def test_every_task_output_matches_the_masked_torch_model(ckpt, request, tmp_path):
    path = request.getfixturevalue(ckpt)
    manifest = compile_artifact(CompileRequest(path, "host", tmp_path / "a"))
    formats = manifest.summary.formats
    assert formats.get("csr", 0) + formats.get("bsr", 0) > 0, formats
    assert_matches_torch(tmp_path / "a", path)
    model = onnx.load(tmp_path / "a" / "model.onnx")
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version <= 10
    assert {"edgeprune"} <= {o.domain for o in model.opset_import}


def test_lite0_depthwise_layers_stay_standard_and_relu6_is_fused(lite90, tmp_path):
    manifest = compile_artifact(CompileRequest(lite90, "host", tmp_path / "a"))
    model = onnx.load(tmp_path / "a" / "model.onnx")
    grouped = [n for n in model.graph.node if n.op_type == "Conv" and any(a.name == "group" and a.i > 1
                                                                       for a in n.attribute)]  # fmt: skip
    assert grouped, "the depthwise convolutions are still standard Conv nodes"
    assert any(layer.activation == "relu6" and layer.format != "dense" for layer in manifest.layers)


def test_format_policy_forces_csr_and_nm(resnet90, resnet24, tmp_path):
    m = compile_artifact(CompileRequest(resnet90, "host", tmp_path / "csr", policy="csr"))
    assert {layer.format for layer in m.layers} == {"csr"}
    m = compile_artifact(CompileRequest(resnet90, "host", tmp_path / "nm", policy="nm"))
    # A 90%-sparse layer may happen to be 2:4 already; every other one stays dense and says why.
    dense = [layer for layer in m.layers if layer.format == "dense"]
    assert dense and all("not N:M sparse" in layer.note for layer in dense)
    assert {layer.format for layer in m.layers} <= {"dense", "nm"}
    m = compile_artifact(CompileRequest(resnet24, "host", tmp_path / "nm24", policy="nm"))
    assert "nm" in m.summary.formats
    assert_matches_torch(tmp_path / "nm24", resnet24)


def test_filter_pruned_layers_are_physically_shrunk(filters50, resnet90, tmp_path):
    m = compile_artifact(CompileRequest(filters50, "host", tmp_path / "a", policy="shrunk"))
    shrunk = [layer for layer in m.layers if layer.format == "shrunk"]
    assert len(shrunk) >= 10
    assert all(layer.stored_bytes < 0.7 * layer.dense_bytes for layer in shrunk)
    model = onnx.load(tmp_path / "a" / "model.onnx")
    assert not any(n.domain == "edgeprune" for n in model.graph.node)  # standard ops only
    assert_matches_torch(tmp_path / "a", filters50)
    # Unstructured sparsity removes no whole filter: nothing to shrink.
    m = compile_artifact(CompileRequest(resnet90, "host", tmp_path / "b", policy="shrunk"))
    assert any("no whole filter" in layer.note for layer in m.layers)


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


def test_calibration_table_round_trip(tmp_path):
    from edgeprune.costmodel.calibrate import calibrate
    from edgeprune.costmodel.table import CostTable

    table = calibrate("host", host_library(), 1, budget_s=0.01)
    assert table.measured and {("kxk", "csr"), ("1x1", "bsr"), ("kxk", "nm")} <= set(table.curves)
    table.save(tmp_path / "t.json")
    again = CostTable.load(tmp_path / "t.json")
    assert again.ratio("csr", "kxk", 0.1) == table.ratio("csr", "kxk", 0.1)
    assert again.ratio("csr", "kxk", 0.0) == table.curves[("kxk", "csr")][0][1]  # clamps below the first point


def bad_args(resnet90, tmp_path):
    o = tmp_path / "o"
    return {
        "unknown target": (["compile", resnet90, "-o", o, "--target", "nosuch"], "unknown target 'nosuch'"),
        "corrupt checkpoint": (["compile", tmp_path / "bad.ept", "-o", tmp_path / "o"], "corrupt or truncated"),
        "missing checkpoint": (["compile", tmp_path / "none.ept", "-o", tmp_path / "o"], "checkpoint not found"),
        "format policy": (["compile", resnet90, "-o", o, "--format-policy", "fast"], "unknown format policy"),
        "input size": (["compile", resnet90, "-o", tmp_path / "o", "--input-size", "big"], "not HxW"),
        "existing output": (["compile", resnet90, "-o", tmp_path / "exists"], "exists; use --force"),
        "not an artifact": (["bench", tmp_path / "exists"], "not an edgeprune artifact"),
        "bench threads": (["bench", tmp_path / "exists", "--seconds", "0"], "--seconds must be positive"),
    }


@pytest.mark.parametrize("case", ["unknown target", "corrupt checkpoint", "missing checkpoint", "format policy",
                                  "input size", "existing output", "not an artifact", "bench threads"])  # fmt: skip
def test_bad_input_exits_2_with_one_line_and_nothing_written(case, resnet90, tmp_path, capsys):
    (tmp_path / "bad.ept").write_bytes(resnet90.read_bytes()[:5000])
    (tmp_path / "exists").mkdir()
    args, message = bad_args(resnet90, tmp_path)[case]
    code, _, err = run_cli(args, capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.ept", "exists"]


def test_library_built_for_another_cpu_is_refused(resnet90, tmp_path, capsys):
    art = tmp_path / "art"
    compile_artifact(CompileRequest(resnet90, "host", art))
    lib = art / "libedgeprune_ort.so"
    data = bytearray(lib.read_bytes())
    data[18:20] = (183).to_bytes(2, "little")  # ELF machine: aarch64
    lib.write_bytes(bytes(data))
    code, _, err = run_cli(["bench", art, "--seconds", "0.1"], capsys)
    assert code == 2 and "built for aarch64" in err


def test_an_op_the_exporter_cannot_handle_is_named_with_its_layer(tmp_path_factory, tmp_path, capsys):
    ckpt = pruned(tmp_path_factory, "digit-pool", "pool-cnn", "magnitude", 0.8)
    # 28x28 digits reach the 2x2 adaptive pool as 7x7, which ONNX cannot express.
    code, _, err = run_cli(["compile", ckpt, "-o", tmp_path / "o"], capsys)
    assert code == 2 and "op adaptive_avg_pool2d in layer backbone.11 (AdaptiveAvgPool2d)" in err
    assert not (tmp_path / "o").exists()
    code, _, err = run_cli(["compile", ckpt, "-o", tmp_path / "o", "--input-size", "32x32"], capsys)
    assert code == 0, err
