"""``mtl-resnet``: DeepLab-ResNet style multi-task network (the architecture family of CUT,
arXiv 2504.09803 Sec. 4.1, and AdapMTL, arXiv 2408.03913 Sec. 4.1), width reduced for CPUs.

A ResNet backbone of basic blocks whose last stage is dilated (output stride 8), and one
ASPP head per task.

Usage::

    from edgeprune.models.resnet import MTLResNet
    net = MTLResNet({"seg": 5, "depth": 1, "normal": 3})
    out = net(torch.randn(1, 3, 64, 64))   # {"seg": (1,5,64,64), "depth": ..., "normal": ...}
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgeprune.models.heads import DenseMultiTask


class BasicBlock(nn.Module):
    """ResNet basic block (He et al., CVPR 2016) with optional dilation."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, dilation, dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, dilation, dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.down: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.down = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.down(x))


class ResNetBackbone(nn.Module):
    """Stem + four stages; stage 4 dilated so the output stride is 8 (DeepLab-v2)."""

    def __init__(self, width: int = 16, blocks: tuple[int, int, int, int] = (1, 1, 1, 1)) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU())
        plan = [(w, w, 1, 1), (w, 2 * w, 2, 1), (2 * w, 4 * w, 2, 1), (4 * w, 8 * w, 1, 2)]
        stages = []
        for (cin, cout, stride, dil), n in zip(plan, blocks, strict=True):
            layers = [BasicBlock(cin, cout, stride, dil)]
            layers += [BasicBlock(cout, cout, 1, dil) for _ in range(n - 1)]
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.out_channels = 8 * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))


class MTLResNet(DenseMultiTask):
    """Shared dilated ResNet backbone, one ASPP head per task."""

    def __init__(self, task_channels: dict[str, int], width: int = 16, head_width: int = 64) -> None:
        super().__init__(ResNetBackbone(width), task_channels, head_width)
