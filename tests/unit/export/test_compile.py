"""export.compile on the host: the artifact's every task output matches the masked PyTorch
model (with the kernel library and through the fallback), depthwise layers stay standard, and
formats follow the policy (forced CSR and N:M, physically shrunk filters)."""

import numpy as np
import onnx
import pytest
import torch
from helpers import RESNET90

from edgeprune.checkpoint import load_checkpoint, masked_model
from edgeprune.contracts.manifest import Manifest
from edgeprune.export.compile import CompileRequest, compile_artifact
from edgeprune.runtime.kernel_library import host_library, session
from edgeprune.workload.registry import resolve_workload


@pytest.fixture
def resnet90(checkpoints):
    return checkpoints(**RESNET90)


@pytest.fixture
def lite90(checkpoints):
    return checkpoints("scenes", "magnitude", 0.9, model="mtl-lite0", scope="layer")


@pytest.fixture
def resnet24(checkpoints):
    return checkpoints("scenes", "nm", None, model="mtl-resnet")


@pytest.fixture
def filters50(checkpoints):
    return checkpoints("scenes", "l1-filter", 0.5, model="mtl-resnet")


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


@pytest.mark.parametrize(("options", "policy"), [
    ({"granularity": "block:4x1"}, "bsr"),  # multi-task blocks the BSR kernel runs
    ({"granularity": "2:4"}, "nm"),  # multi-task N:M
    ({"allocate": "latency", "input_size": "128x128"}, "csr"),  # every layer, the stride-2 ones included
])  # fmt: skip
def test_hardware_aware_cut_masks_run_in_their_format_and_match_the_masked_torch_model(
    checkpoints, tmp_path, options, policy
):
    sparsity = None if policy == "nm" else 0.9
    path = checkpoints("scenes", "cut", sparsity, model="mtl-resnet", calib_batches=2, **options)
    m = compile_artifact(CompileRequest(path, "host", tmp_path / "a", policy=policy))
    assert policy in m.summary.formats, m.summary.formats
    if policy == "csr":  # forced on every layer: the stride-2 ones run the kernel's phase planes
        assert {layer.format for layer in m.layers} == {"csr"}
    assert_matches_torch(tmp_path / "a", path)
