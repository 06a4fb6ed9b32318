"""Built-in workload ``scenes``: semantic segmentation, depth and surface normals on
procedurally rendered rooms (the three NYU-v2 tasks of CUT and AdapMTL), with ``mtl-resnet``
(default) and ``mtl-lite0``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from edgeprune import metrics as M
from edgeprune.data.scene_renderer import SCENE_CLASSES, scene_set
from edgeprune.models.lite0 import MTLLite0
from edgeprune.models.resnet import MTLResNet
from edgeprune.workload.base import Metric, ModelSpec, Split, Task, TensorData, Workload
from edgeprune.workload.weights import shipped_weights

SCENE_SIZE = 64
_SPLITS: dict[str, tuple[int, int]] = {"train": (1600, 0), "calibration": (256, 0), "eval": (200, 1_000_000)}
TASK_CHANNELS = {"seg": len(SCENE_CLASSES), "depth": 1, "normal": 3}


def _depth_loss(pred: Tensor, target: Tensor) -> Tensor:
    return F.l1_loss(pred.squeeze(1), target)


def _normal_loss(pred: Tensor, target: Tensor) -> Tensor:
    return 1.0 - (F.normalize(pred, dim=1) * target).sum(dim=1).mean()


TASKS = {
    "seg": Task("seg", F.cross_entropy, (Metric("miou", M.miou, True), Metric("pixel_acc", M.pixel_accuracy, True))),
    "depth": Task(
        "depth", _depth_loss,
        (Metric("abs_err", M.depth_abs_error, False), Metric("rel_err", M.depth_rel_error, False)),
    ),
    "normal": Task(
        "normal", _normal_loss,
        (
            Metric("mean_deg", M.normal_mean_angle, False),
            Metric("median_deg", M.normal_median_angle, False),
            Metric("within_11.25", M.normal_within(11.25), True),
            Metric("within_22.5", M.normal_within(22.5), True),
            Metric("within_30", M.normal_within(30.0), True),
        ),
    ),
}  # fmt: skip


def scenes_data(split: Split, size: int = SCENE_SIZE) -> TensorData:
    """Render (or load from the cache) one split; eval scenes use seeds disjoint from train."""
    count, seed = _SPLITS[split]
    arrays = scene_set(count, size, seed)
    targets = {
        "seg": torch.from_numpy(arrays["seg"]),
        "depth": torch.from_numpy(arrays["depth"]),
        "normal": torch.from_numpy(arrays["normal"]),
    }
    return torch.from_numpy(arrays["image"]), targets


def make_workload() -> Workload:
    """The ``scenes`` workload with its two reference models."""
    return Workload(
        name="scenes",
        description=f"rendered rooms, {SCENE_SIZE}px: segmentation ({len(SCENE_CLASSES)} classes), depth, normals",
        tasks=dict(TASKS),
        models={
            "mtl-resnet": ModelSpec(
                "mtl-resnet", lambda: MTLResNet(TASK_CHANNELS), shipped_weights("mtl-resnet"),
                "DeepLab-ResNet style: dilated ResNet backbone, ASPP head per task",
            ),
            "mtl-lite0": ModelSpec(
                "mtl-lite0", lambda: MTLLite0(TASK_CHANNELS, pretrained=False), shipped_weights("mtl-lite0"),
                "ImageNet-pretrained EfficientNet-Lite0 backbone + neck, ASPP head per task",
            ),
        },
        data=scenes_data,
    )  # fmt: skip
