"""The shipped reference models load from their half-precision files and are really trained."""

import pytest

from edgeprune.evaluate import evaluate
from edgeprune.workload.registry import resolve_workload
from edgeprune.workload.weights import WEIGHTS_DIR

# Floors well below the recorded dense metrics (README) and far above an untrained model.
FLOORS = {
    ("digits", "digits-cnn"): {"digit.top1": 0.9, "parity.top1": 0.9, "ge5.top1": 0.9},
    ("scenes", "mtl-resnet"): {"seg.miou": 0.5, "normal.within_30": 0.7},
    ("scenes", "mtl-lite0"): {"seg.miou": 0.5, "normal.within_30": 0.6},
}


def test_all_checkpoints_together_stay_under_30_mb():
    files = list(WEIGHTS_DIR.glob("*.safetensors"))
    assert {f.stem for f in files} >= {"digits-cnn", "mtl-resnet", "mtl-lite0"}
    assert sum(f.stat().st_size for f in files) < 30 * 1024 * 1024


@pytest.mark.parametrize(("workload", "model"), list(FLOORS))
def test_shipped_model_meets_its_quality_floor(workload, model):
    from edgeprune.workload.registry import build_model

    wl = resolve_workload(workload)
    result = evaluate(build_model(wl, model), wl, list(wl.tasks))
    for key, floor in FLOORS[(workload, model)].items():
        task, metric = key.split(".")
        assert result[task][metric] >= floor, (key, result[task][metric])
    if workload == "scenes":
        assert result["depth"]["rel_err"] < 0.25
