"""The per-target autoencoder after faceswap-GAN: one shared encoder, one decoder per identity.

Training teaches every decoder to rebuild its own person from the shared code; swapping runs any
face through the encoder and the *target's* decoder. Each decoder returns RGB and an alpha mask
(where it is confident it drew the face), which the blend stage combines with the landmark mask.

Shapes: (B, 3, S, S) in [-1, 1] → RGB (B, 3, S, S) in [-1, 1] and mask (B, 1, S, S) in [0, 1];
S = 128 or 256.
"""

from __future__ import annotations

import torch
from torch import nn

from realtime.models.hyperparameters import OneOf, Rule, Whole

# What a checkpoint's metadata may ask ``TargetAutoencoder`` for (trained here: 32 wide, 512, 2 people).
HYPERPARAMETERS: dict[str, Rule] = {
    "crop_size": OneOf((128, 256)),
    "identities": Whole(1, 64),
    "width": Whole(1, 512),
    "bottleneck": Whole(1, 8192),
}


def _down(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 5, 2, 2), nn.LeakyReLU(0.1))


class _Up(nn.Module):
    """Conv to 4× the channels, then pixel shuffle: the up-scaling faceswap-GAN uses."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels * 4, 3, 1, 1)
        self.act = nn.LeakyReLU(0.1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.act(self.conv(x)))


class Decoder(nn.Module):
    def __init__(self, *, in_channels: int, width: int, ups: int) -> None:
        super().__init__()
        channels = [max(width, in_channels // 2**i) for i in range(ups + 1)]
        self.body = nn.Sequential(*[_Up(channels[i], channels[i + 1]) for i in range(ups)])
        self.rgb = nn.Conv2d(channels[-1], 3, 5, 1, 2)
        self.alpha = nn.Conv2d(channels[-1], 1, 5, 1, 2)

    def forward(self, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.body(code)
        return torch.tanh(self.rgb(x)), torch.sigmoid(self.alpha(x))


class TargetAutoencoder(nn.Module):
    def __init__(self, *, crop_size: int = 128, identities: int = 2, width: int = 32, bottleneck: int = 512) -> None:
        super().__init__()
        if crop_size not in (128, 256):
            raise ValueError(f"crop_size must be 128 or 256, not {crop_size}")
        self.crop_size = crop_size
        downs = 4 if crop_size == 128 else 5  # down to 8×8
        channels = [3] + [width * 2**i for i in range(downs)]
        self.encoder = nn.Sequential(*[_down(channels[i], channels[i + 1]) for i in range(downs)])
        code_channels = channels[-1]
        # The dense bottleneck: every pixel of the code sees the whole face (pose, expression).
        self.squeeze = nn.Linear(code_channels * 8 * 8, bottleneck)
        self.expand = nn.Linear(bottleneck, code_channels * 4 * 4)
        self.code_channels = code_channels
        self.up = _Up(code_channels, code_channels)  # 4×4 → 8×8
        self.decoders = nn.ModuleList([Decoder(in_channels=code_channels, width=width, ups=downs) for _ in range(identities)])

    def encode(self, faces: torch.Tensor) -> torch.Tensor:
        x = self.encoder(faces).flatten(1)
        x = self.expand(self.squeeze(x)).view(-1, self.code_channels, 4, 4)
        return self.up(x)

    def forward(self, faces: torch.Tensor, identity: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        return self.decoders[identity](self.encode(faces))


class TargetSwapper(nn.Module):
    """The autoencoder with its target decoder fixed: what gets compiled for the live path."""

    def __init__(self, model: TargetAutoencoder, identity: int) -> None:
        super().__init__()
        if not 0 <= identity < len(model.decoders):
            raise ValueError(f"identity {identity} does not exist (the model has {len(model.decoders)})")
        self.model = model
        self.identity = identity

    def forward(self, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.decoders[self.identity](self.model.encode(faces))
