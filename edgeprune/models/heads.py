"""Dense-prediction heads shared by the reference models."""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn


class ASPPHead(nn.Module):
    """DeepLab-v2 style atrous spatial pyramid head: parallel dilated 3x3 branches, summed,
    then a 1x1 classifier, upsampled to the input size (Chen et al., TPAMI 2018, Sec. 3.3)."""

    def __init__(self, in_ch: int, mid_ch: int, out_ch: int, rates: tuple[int, ...] = (1, 2, 4)) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Conv2d(in_ch, mid_ch, 3, padding=r, dilation=r, bias=False) for r in rates
        )
        self.bn = nn.BatchNorm2d(mid_ch)
        self.classifier = nn.Conv2d(mid_ch, out_ch, 1)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        y = self.branches[0](x)
        for branch in self.branches[1:]:
            y = y + branch(x)
        y = self.classifier(F.relu(self.bn(y)))
        return F.interpolate(y, size=size, mode="bilinear", align_corners=False)


def task_output(name: str, y: torch.Tensor) -> torch.Tensor:
    """Final activation per dense task: unit normals, positive depth, raw logits otherwise."""
    if name == "normal":
        return F.normalize(y, dim=1)
    if name == "depth":
        return F.softplus(y)
    return y


class DenseMultiTask(nn.Module):
    """A backbone shared by every task and one ASPP head per task (``backbone.out_channels``
    features in), each output upsampled to the input size."""

    def __init__(self, backbone: nn.Module, task_channels: dict[str, int], head_width: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.heads = nn.ModuleDict(
            {t: ASPPHead(cast(int, backbone.out_channels), head_width, c) for t, c in task_channels.items()}
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        size = (x.shape[-2], x.shape[-1])
        feat = self.backbone(x)
        return {t: task_output(t, head(feat, size)) for t, head in self.heads.items()}
