"""An identity encoder of our own, MobileFaceNet-like (Chen et al. 2018): a 112-pixel aligned face
→ a unit-norm embedding. Small enough to run once per source face on any device; it is trained by
distillation from a teacher (train/), and it is also the identity judge inside AEI-Net's losses.

Shapes: (B, 3, H, W) in [-1, 1] (H×W = 112×112 by default) → (B, embed_dim), L2-normalised.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from realtime.models.hyperparameters import Real, Rule, Size, Whole

# What a checkpoint's metadata may ask ``IdentityEncoder`` for (shipped: 128-D, 112×112, width 1).
HYPERPARAMETERS: dict[str, Rule] = {
    "embed_dim": Whole(1, 2048),
    "input_size": Size(16, 512, 16),
    "width": Real(0.0, 8.0),
}


def _conv_bn(in_channels: int, out_channels: int, kernel: int | tuple[int, int], stride: int = 1, *, groups: int = 1, act: bool = True) -> nn.Sequential:
    padding = (kernel // 2) if isinstance(kernel, int) else 0
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel, stride, padding, groups=groups, bias=False), nn.BatchNorm2d(out_channels)]
    if act:
        layers.append(nn.PReLU(out_channels))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """Expand 1×1, depthwise 3×3, project 1×1 (linear); residual when the shape is kept."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.residual = stride == 1 and in_channels == out_channels
        self.body = nn.Sequential(
            _conv_bn(in_channels, hidden, 1),
            _conv_bn(hidden, hidden, 3, stride, groups=hidden),
            _conv_bn(hidden, out_channels, 1, act=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


# (expansion t, channels c, repeats n, first stride s), as in the MobileFaceNets paper.
SETTINGS = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


class IdentityEncoder(nn.Module):
    def __init__(self, *, embed_dim: int = 128, input_size: tuple[int, int] = (112, 112), width: float = 1.0) -> None:
        super().__init__()
        if input_size[0] % 16 or input_size[1] % 16:
            raise ValueError(f"input_size must be a multiple of 16, not {input_size}")
        self.embed_dim = embed_dim
        self.input_size = input_size
        scaled = lambda c: max(8, int(round(c * width)))  # noqa: E731
        self.stem = nn.Sequential(_conv_bn(3, scaled(64), 3, 2), _conv_bn(scaled(64), scaled(64), 3, 1, groups=scaled(64)))
        blocks: list[nn.Module] = []
        channels = scaled(64)
        for expansion, out, repeats, stride in SETTINGS:
            for index in range(repeats):
                blocks.append(InvertedResidual(channels, scaled(out), stride if index == 0 else 1, expansion))
                channels = scaled(out)
        self.blocks = nn.Sequential(*blocks)
        self.head = _conv_bn(channels, scaled(512), 1)
        feature = (input_size[0] // 16, input_size[1] // 16)
        # Global depthwise convolution: a learned, position-aware pooling over the final map.
        self.pool = _conv_bn(scaled(512), scaled(512), feature, groups=scaled(512), act=False)
        self.embed = nn.Sequential(nn.Conv2d(scaled(512), embed_dim, 1, bias=False), nn.BatchNorm2d(embed_dim))

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.head(self.blocks(self.stem(faces))))
        return F.normalize(self.embed(x).flatten(1), dim=1)
