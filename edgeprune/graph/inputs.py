"""Inputs at a deploy resolution: the one way a workload's (or a checkpoint's) image inputs
are brought to another size, so compile, verify and evaluate see the same pixels."""

from __future__ import annotations

import torch
from torch import Tensor


def resized(x: Tensor, size: tuple[int, int] | None) -> Tensor:
    """``x`` (N, C, H, W) as float32 at ``size`` (H, W), bilinear; unchanged when it already is."""
    x = x.float()
    if size is None or tuple(x.shape[2:]) == tuple(size):
        return x
    return torch.nn.functional.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
