"""A multi-scale PatchGAN discriminator (pix2pixHD, as FaceShifter used): the same small patch
classifier at the full crop and at each halving of it, so both texture and layout are judged.
Training only: the live path never loads it.

Shapes: (B, 3, S, S) in [-1, 1] → one (B, 1, h, w) map of real/fake scores per scale.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchGAN(nn.Module):
    """Three stride-2 and two stride-1 4×4 convolutions: each score sees a ~70 px patch."""

    def __init__(self, *, width: int = 32) -> None:
        super().__init__()
        channels = [3, width, width * 2, width * 4, width * 8]
        layers: list[nn.Module] = []
        for index, (c_in, c_out) in enumerate(zip(channels, channels[1:], strict=False)):
            stride = 2 if index < 3 else 1
            layers.append(nn.Conv2d(c_in, c_out, 4, stride, 1))
            if index > 0:  # no normalisation on the first layer, as in pix2pix
                layers.append(nn.InstanceNorm2d(c_out, affine=True))
            layers.append(nn.LeakyReLU(0.2))
        layers.append(nn.Conv2d(channels[-1], 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


class MultiScaleDiscriminator(nn.Module):
    def __init__(self, *, scales: int = 2, width: int = 32) -> None:
        super().__init__()
        if scales < 1:
            raise ValueError(f"scales must be at least 1, not {scales}")
        self.scales = nn.ModuleList(PatchGAN(width=width) for _ in range(scales))

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        scores = []
        for index, patch_gan in enumerate(self.scales):
            if index:
                images = F.avg_pool2d(images, 3, stride=2, padding=1, count_include_pad=False)
            scores.append(patch_gan(images))
        return scores
