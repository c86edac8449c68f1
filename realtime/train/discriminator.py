"""A multi-scale PatchGAN discriminator (pix2pixHD, as FaceShifter used): the same small patch
classifier at the full crop and at each halving of it, so both texture and layout are judged.
Training only: the live path never loads it.

Shapes: (B, 3, S, S) in [-1, 1] → one (B, 1, h, w) map of real/fake scores per scale.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import cast

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

    def features_and_score(self, images: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Each block's activation (after its LeakyReLU) and the score map: what a feature
        matching loss compares."""
        features = []
        h = images
        for layer in self.net:
            h = layer(h)
            if isinstance(layer, nn.LeakyReLU):
                features.append(h)
        return features, h


class MultiScaleDiscriminator(nn.Module):
    def __init__(self, *, scales: int = 2, width: int = 32) -> None:
        super().__init__()
        if scales < 1:
            raise ValueError(f"scales must be at least 1, not {scales}")
        self.scales = nn.ModuleList(PatchGAN(width=width) for _ in range(scales))

    def _pyramid(self, images: torch.Tensor) -> list[torch.Tensor]:
        levels = [images]
        for _ in range(len(self.scales) - 1):
            levels.append(F.avg_pool2d(levels[-1], 3, stride=2, padding=1, count_include_pad=False))
        return levels

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.features_and_scores(images)[1]

    def features_and_scores(self, images: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Every scale's block activations (one flat list, coarsest scale last) and its scores."""
        features: list[torch.Tensor] = []
        scores = []
        for patch_gan, level in zip(self.scales, self._pyramid(images), strict=True):
            level_features, score = cast(PatchGAN, patch_gan).features_and_score(level)
            features += level_features
            scores.append(score)
        return features, scores


def save_weights(discriminator: nn.Module, path: Path) -> None:
    """The discriminator's weights alone (FP16, no optimiser state): small enough to carry to a
    fresh machine, for a restart with ``--init-discriminator``."""
    from safetensors.torch import save_file

    tensors = {name: (t.detach().cpu().contiguous().half() if t.is_floating_point() else t.detach().cpu().contiguous()) for name, t in discriminator.state_dict().items()}
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp))
    os.replace(tmp, path)


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """What ``save_weights`` wrote, as FP32 tensors."""
    from safetensors.torch import load_file

    return {name: tensor.float() for name, tensor in load_file(str(path)).items()}
