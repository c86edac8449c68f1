"""Pixel boost: a generator made for S px crops run on a k·S crop, split into its k² polyphase
sub-images (sub-image (a, b) holds the pixels (k·i + a, k·j + b)), all in one batch, and the
outputs interleaved back. Each sub-image is a whole face at the model's size, shifted by a
fraction of a pixel, so the interleaved result carries k times the detail per axis."""

from __future__ import annotations

import torch
from torch import nn


def split_phases(images: torch.Tensor, k: int) -> torch.Tensor:
    """(B, C, k·S, k·S) → (B·k², C, S, S), sub-image (a, b) of face n at n·k² + a·k + b."""
    batch, channels, height, width = images.shape
    s_h, s_w = height // k, width // k
    phases = images.reshape(batch, channels, s_h, k, s_w, k).permute(0, 3, 5, 1, 2, 4)
    return phases.reshape(batch * k * k, channels, s_h, s_w)


def join_phases(phases: torch.Tensor, k: int) -> torch.Tensor:
    """The inverse of ``split_phases``."""
    count, channels, s_h, s_w = phases.shape
    batch = count // (k * k)
    images = phases.reshape(batch, k, k, channels, s_h, s_w).permute(0, 3, 4, 1, 5, 2)
    return images.reshape(batch, channels, s_h * k, s_w * k)


class PixelBoost(nn.Module):
    def __init__(self, generator: nn.Module, k: int) -> None:
        super().__init__()
        self.generator = generator
        self.k = k

    def forward(self, crops: torch.Tensor, *rest: torch.Tensor) -> tuple[torch.Tensor, ...]:
        copies = self.k * self.k
        outputs = self.generator(split_phases(crops, self.k), *(r.repeat_interleave(copies, dim=0) for r in rest))
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        return tuple(join_phases(o, self.k) for o in outputs)
