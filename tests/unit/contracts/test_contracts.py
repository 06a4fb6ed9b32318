"""The files that travel between stages are typed and versioned: a valid document round-trips,
and a bad one (wrong type, unknown or missing field, another format, not JSON, not UTF-8, a path
that leaves the artifact) is one UserError line that names the file and the field."""

import json

import pytest
from helpers import manifest_doc, results_doc

from edgeprune.contracts.checkpoint import CheckpointMeta
from edgeprune.contracts.manifest import MANIFEST, Manifest
from edgeprune.contracts.results import Results
from edgeprune.errors import UserError


def write_artifact(tmp_path, doc, raw=None):
    art = tmp_path / "art"
    art.mkdir()
    for name in ("model.onnx", "dense.onnx"):
        (art / name).write_bytes(b"x")
    (art / MANIFEST).write_bytes(raw if raw is not None else json.dumps(doc).encode())
    return art


def test_a_valid_manifest_round_trips(tmp_path):
    art = write_artifact(tmp_path, manifest_doc())
    manifest = Manifest.read(art)
    assert manifest.target.power.sensor == "none" and manifest.backend == "onnxruntime"
    assert manifest.path(art, "model") == art / "model.onnx"
    assert json.loads(manifest.to_json()) == {**manifest_doc(), "gpu": None, "tuning": None,
                                              "check": {**manifest_doc()["check"], "with_library": None,
                                                        "max_rel_error_dense_module": None,
                                                        "max_rel_error_gpu_graph": None}}  # fmt: skip


def bad(doc, *keys_value):
    *keys, value = keys_value
    node = doc
    for k in keys[:-1]:
        node = node[k]
    node[keys[-1]] = value
    return doc


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: bad(d, "target", "threads", "4"), "field target.threads: input should be a valid integer"),
    (lambda d: bad(d, "files", "model", "path", "../x.so"), "field files.model.path"),
    (lambda d: bad(d, "files", "model", "path", "/etc/passwd"), "not a path inside the artifact"),
    (lambda d: bad(d, "layers", 0, "density", "dense"), "field layers.0.density"),
    (lambda d: bad(d, "tasks", 3), "field tasks: input should be a valid list"),
    (lambda d: bad(d, "surprise", 1), "field surprise: extra inputs are not permitted"),
    (lambda d: {k: v for k, v in d.items() if k != "backend"}, "field backend: field required"),
    (lambda d: bad(d, "format", "edgeprune.artifact/1"), "format edgeprune.artifact/1 is no longer read"),
    (lambda d: bad(d, "format", "something/9"), "unsupported format 'something/9'"),
    (lambda d: [d], "not a JSON object"),
    (lambda d: {**d, "files": {"dense": d["files"]["dense"]}}, "field files.model: missing"),
])  # fmt: skip
def test_a_bad_manifest_is_one_line_naming_the_field(tmp_path, change, message):
    art = write_artifact(tmp_path, change(manifest_doc()))
    with pytest.raises(UserError, match="manifest.json") as info:
        Manifest.read(art)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(("raw", "message"), [(b"\xff\xfe{", "not UTF-8"), (b"{\"format\": ", "not valid JSON")])
def test_a_manifest_that_is_not_json_text_is_refused(tmp_path, raw, message):
    with pytest.raises(UserError, match=message):
        Manifest.read(write_artifact(tmp_path, None, raw))


def test_a_manifest_whose_file_is_missing_names_it(tmp_path):
    art = write_artifact(tmp_path, manifest_doc())
    (art / "dense.onnx").unlink()
    with pytest.raises(UserError, match="dense.onnx is missing"):
        Manifest.read(art)


def test_results_validate_on_read(tmp_path):
    doc = results_doc()
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc))
    assert Results.read(path).latency["sparse"].runs == 30
    path.write_text(json.dumps(bad(doc, "latency", "dense", "runs", 2.5)))
    with pytest.raises(UserError, match="field latency.dense.runs"):
        Results.read(path)


def test_results_of_format_1_read_as_format_2(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({**results_doc(), "format": "edgeprune.results/1"}))
    assert Results.read(path).format == "edgeprune.results/2"


def test_measured_energy_is_typed_and_validated(tmp_path):
    per = {"gross_j": 0.01, "net_j": 0.004, "uncertainty_j": 0.0002, "mean_power_w": 5.0, "blocks": 3,
           "inferences_per_block": 100, "seconds_per_block": 0.2}  # fmt: skip
    energy = {"backend": "ina3221-hwmon", "rail": "VDD_IN", "source": "/sys/...", "sampling_hz": 190.0,
              "requested_hz": 200.0, "idle_power_w": 3.0, "idle_uncertainty_w": 0.01, "idle_seconds": 2.0,
              "sparse": per, "dense": dict(per), "ratio_net": 1.0, "ratio_gross": 1.0, "method": "blocks"}  # fmt: skip
    path = tmp_path / "results.json"
    path.write_text(json.dumps({**results_doc(), "energy": energy, "energy_reason": ""}))
    assert Results.read(path).energy.dense.net_j == 0.004
    path.write_text(json.dumps({**results_doc(), "energy": bad(energy, "sparse", "net_j", "4 mJ")}))
    with pytest.raises(UserError, match="field energy.sparse.net_j"):
        Results.read(path)


def test_checkpoint_metadata_names_the_bad_field():
    meta = {"format": "edgeprune.checkpoint/2", "edgeprune_version": "0.1.0", "workload": "digits",
            "model": "digits-cnn", "tasks": ["digit"], "method": "magnitude", "settings": {}, "source_hash": "h"}
    assert CheckpointMeta.from_json(json.dumps(meta), "m.ept").tasks == ["digit"]
    with pytest.raises(UserError, match="m.ept: checkpoint metadata: field settings: input should be a valid dict"):
        CheckpointMeta.from_json(json.dumps({**meta, "settings": []}), "m.ept")
