"""Per-task metrics and the multi-task score ΔT.

Each metric takes the whole evaluation set's predictions and targets (tensors) and returns a
float. Conventions follow the dense-prediction literature that CUT (arXiv 2504.09803, Sec. 4.1)
and AdapMTL (arXiv 2408.03913, Sec. 4.1) report on NYU-v2: mIoU and pixel accuracy for
segmentation, absolute and relative error for depth, and the angle error (mean, median, share
within 11.25 / 22.5 / 30 degrees) for surface normals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
from torch import Tensor


def top1(logits: Tensor, labels: Tensor) -> float:
    """Share of samples whose arg-max class equals the label."""
    return float((logits.argmax(dim=1) == labels).float().mean())


def confusion_matrix(pred: Tensor, labels: Tensor, num_classes: int, ignore_index: int = -1) -> Tensor:
    """``num_classes`` x ``num_classes`` counts, rows = truth, columns = prediction."""
    valid = labels != ignore_index
    idx = labels[valid] * num_classes + pred[valid]
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def miou(logits: Tensor, labels: Tensor, ignore_index: int = -1) -> float:
    """Mean intersection over union over the classes present in truth or prediction."""
    num_classes = logits.shape[1]
    cm = confusion_matrix(logits.argmax(dim=1), labels, num_classes, ignore_index).double()
    inter = cm.diag()
    union = cm.sum(0) + cm.sum(1) - inter
    present = union > 0
    return float((inter[present] / union[present]).mean())


def pixel_accuracy(logits: Tensor, labels: Tensor, ignore_index: int = -1) -> float:
    """Share of labelled pixels classified correctly."""
    valid = labels != ignore_index
    return float((logits.argmax(dim=1)[valid] == labels[valid]).double().mean())


def _valid_depth(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    pred, target = pred.reshape(target.shape), target
    valid = target > 0
    return pred[valid].double(), target[valid].double()


def depth_abs_error(pred: Tensor, target: Tensor) -> float:
    """Mean |pred - target| over pixels with a valid (positive) depth."""
    p, t = _valid_depth(pred, target)
    return float((p - t).abs().mean())


def depth_rel_error(pred: Tensor, target: Tensor) -> float:
    """Mean |pred - target| / target over pixels with a valid depth."""
    p, t = _valid_depth(pred, target)
    return float(((p - t).abs() / t).mean())


def normal_angles_deg(pred: Tensor, target: Tensor) -> Tensor:
    """Per-pixel angle in degrees between predicted and true normals (channel dim 1); pixels
    whose true normal is zero are unlabelled and skipped."""
    p = torch.nn.functional.normalize(pred.double(), dim=1)
    t = target.double()
    valid = t.norm(dim=1) > 0.5
    cos = (p * torch.nn.functional.normalize(t, dim=1)).sum(dim=1).clamp(-1.0, 1.0)
    return torch.rad2deg(torch.acos(cos))[valid]


def normal_mean_angle(pred: Tensor, target: Tensor) -> float:
    """Mean angle error in degrees."""
    return float(normal_angles_deg(pred, target).mean())


def normal_median_angle(pred: Tensor, target: Tensor) -> float:
    """Median angle error in degrees (the lower median for an even count)."""
    return float(normal_angles_deg(pred, target).median())


def normal_within(degrees: float) -> Callable[[Tensor, Tensor], float]:
    """Metric: share of pixels whose angle error is below ``degrees``."""

    def within(pred: Tensor, target: Tensor) -> float:
        return float((normal_angles_deg(pred, target) < degrees).double().mean())

    within.__name__ = f"within_{degrees}"
    return within


def delta_t(
    pruned: Mapping[str, float], dense: Mapping[str, float], higher_is_better: Mapping[str, bool]
) -> float:
    """Multi-task score ΔT in percent (AdapMTL, arXiv 2408.03913, Sec. 4.1, after Maninis et al.
    2019): the mean over all task metrics of the relative change against the dense model,
    signed so that a positive value is an improvement: ``100/K * sum_k s_k (M_k - D_k) / D_k``
    with ``s_k = +1`` where higher is better and ``-1`` where lower is better. Metrics whose
    dense value is zero are skipped (the relative change is undefined)."""
    changes = []
    for key, d in dense.items():
        if d == 0 or key not in pruned:
            continue
        sign = 1.0 if higher_is_better[key] else -1.0
        changes.append(sign * (pruned[key] - d) / abs(d))
    if not changes:
        return math.nan
    return 100.0 * sum(changes) / len(changes)
