"""AEI-Net after FaceShifter (Li et al. 2020): one generator for every face.

A U-Net-like multi-level attribute encoder reads the target crop and returns a feature map at
every decoder level (2×2 up to the crop size). The generator starts from the identity embedding
and climbs the same levels with AAD residual blocks: each AAD layer instance-normalises its
activations, modulates them once with attribute γ/β (spatial, from the encoder) and once with
identity γ/β (from the embedding), and mixes the two with a learned sigmoid attention mask.

Shapes: target (B, 3, S, S) in [-1, 1], identity (B, id_dim) unit-norm → (B, 3, S, S) in [-1, 1],
S = 128 or 256.

With ``detail_width`` > 0 (S = 256 only) the network above runs at S/2 as a core, and a detail
stage doubles its output: features of the full-resolution target modulate an AAD block that adds
what the half-size core cannot carry (skin texture, eyelashes, hair edges). The stage's last
convolution starts at zero, so a 128-px model loaded as the core keeps its output, upsampled,
until training teaches the stage something.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from realtime.models.hyperparameters import OneOf, Rule, Whole

# What a checkpoint's metadata may ask ``AEINet`` for (the shipped model: 12/12/6, detail 16).
HYPERPARAMETERS: dict[str, Rule] = {
    "crop_size": OneOf((128, 256)),
    "id_dim": Whole(1, 2048),
    "attr_width": Whole(1, 256),
    "gen_width": Whole(1, 256),
    "max_mult": Whole(1, 64),
    "detail_width": Whole(0, 256),
}


def _levels(crop_size: int) -> int:
    if crop_size not in (128, 256):
        raise ValueError(f"crop_size must be 128 or 256, not {crop_size}")
    return int(math.log2(crop_size))  # 2×2 … S×S: log2(S) levels


class AttributeEncoder(nn.Module):
    """U-Net: down to 2×2, back up with skips; returns the features of every decoder level."""

    def __init__(self, *, crop_size: int, width: int) -> None:
        super().__init__()
        downs = _levels(crop_size) - 1  # S → 2
        self.enc_channels = [min(width * 2**i, width * 8) for i in range(downs)]
        self.down = nn.ModuleList()
        previous = 3
        for channels in self.enc_channels:
            self.down.append(nn.Sequential(nn.Conv2d(previous, channels, 4, 2, 1, bias=False), nn.BatchNorm2d(channels), nn.LeakyReLU(0.1)))
            previous = channels
        self.up = nn.ModuleList()
        # Up from 2×2: each step doubles the size and concatenates the encoder map of that size.
        for index in range(downs - 1, 0, -1):
            out_channels = self.enc_channels[index - 1]
            in_channels = previous
            self.up.append(nn.Sequential(nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=False), nn.BatchNorm2d(out_channels), nn.LeakyReLU(0.1)))
            previous = out_channels * 2
        self.level_channels = [self.enc_channels[-1]] + [c * 2 for c in reversed(self.enc_channels[:-1])] + [self.enc_channels[0] * 2]

    def forward(self, target: torch.Tensor) -> list[torch.Tensor]:
        skips = []
        h = target
        for block in self.down:
            h = block(h)
            skips.append(h)
        levels = [h]  # 2×2
        for block, skip in zip(self.up, reversed(skips[:-1]), strict=False):
            h = torch.cat([block(h), skip], dim=1)
            levels.append(h)
        levels.append(F.interpolate(h, scale_factor=2.0, mode="bilinear", align_corners=False))  # S×S
        return levels


class AAD(nn.Module):
    """Adaptive attentional denormalisation: attribute vs identity modulation, mixed by a mask."""

    def __init__(self, channels: int, attr_channels: int, id_dim: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.attr_gamma = nn.Conv2d(attr_channels, channels, 3, 1, 1)
        self.attr_beta = nn.Conv2d(attr_channels, channels, 3, 1, 1)
        self.id_gamma = nn.Linear(id_dim, channels)
        self.id_beta = nn.Linear(id_dim, channels)
        self.mask = nn.Conv2d(channels, 1, 3, 1, 1)

    def forward(self, h: torch.Tensor, attributes: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        h = self.norm(h)
        from_attributes = self.attr_gamma(attributes) * h + self.attr_beta(attributes)
        from_identity = self.id_gamma(identity)[:, :, None, None] * h + self.id_beta(identity)[:, :, None, None]
        mask = torch.sigmoid(self.mask(h))
        return (1 - mask) * from_attributes + mask * from_identity


class AADResBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, attr_channels: int, id_dim: int) -> None:
        super().__init__()
        self.aad1 = AAD(in_channels, attr_channels, id_dim)
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, 1, 1)
        self.aad2 = AAD(in_channels, attr_channels, id_dim)
        self.conv2 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.shortcut: nn.ModuleList | None = None
        if in_channels != out_channels:
            self.shortcut = nn.ModuleList([AAD(in_channels, attr_channels, id_dim), nn.Conv2d(in_channels, out_channels, 3, 1, 1)])

    def forward(self, h: torch.Tensor, attributes: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        x = self.conv1(F.relu(self.aad1(h, attributes, identity)))
        x = self.conv2(F.relu(self.aad2(x, attributes, identity)))
        if self.shortcut is not None:
            h = self.shortcut[1](F.relu(self.shortcut[0](h, attributes, identity)))
        return x + h


class DetailStage(nn.Module):
    """Doubles the core's resolution: a residual on its upsampled (pre-tanh) output, from one AAD
    block fed the target's full-resolution features and the source identity."""

    def __init__(self, *, width: int, id_dim: int) -> None:
        super().__init__()
        self.attributes = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1), nn.LeakyReLU(0.1), nn.Conv2d(width, width, 3, 1, 1), nn.LeakyReLU(0.1))
        self.lift = nn.Conv2d(3, width, 3, 1, 1)
        self.block = AADResBlock(width, width, width, id_dim)
        self.out = nn.Conv2d(width, 3, 3, 1, 1)
        # a new stage adds nothing: a core trained alone keeps its output until this one learns
        for parameter in self.out.parameters():
            nn.init.zeros_(parameter)

    def forward(self, coarse: torch.Tensor, attributes: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        return coarse + self.out(F.relu(self.block(self.lift(coarse), attributes, identity)))


class AEINet(nn.Module):
    """FaceShifter's adaptive embedding integration network (generator half).

    ``attr_width`` and ``gen_width`` scale every layer and ``max_mult`` caps the coarse levels
    (where parameters pile up): the defaults (12/12/6, about 4.5 M parameters at 256 px) are the GPU
    model; 8/8/8 at 128 px runs on a laptop CPU. ``detail_width`` > 0 makes a 256-px model of a
    128-px core and a detail stage that wide (the core's parameters keep their names, so a 128-px
    checkpoint loads into it: ``core_state``)."""

    def __init__(self, *, crop_size: int = 256, id_dim: int = 128, attr_width: int = 12, gen_width: int = 12, max_mult: int = 6, detail_width: int = 0) -> None:
        super().__init__()
        if detail_width < 0 or (detail_width > 0 and crop_size != 256):
            raise ValueError(f"a detail stage doubles a 128-px core to 256 px: detail_width {detail_width} with crop_size {crop_size} is not a model")
        self.crop_size = crop_size
        self.id_dim = id_dim
        self.core_size = crop_size // 2 if detail_width else crop_size
        self.encoder = AttributeEncoder(crop_size=self.core_size, width=attr_width)
        levels = _levels(self.core_size)
        # Wide at coarse levels, narrow at fine ones, where every channel costs S² multiply-adds.
        channels = [min(gen_width * 2 ** (levels - 1 - i), gen_width * max_mult) for i in range(levels)]
        self.start = nn.ConvTranspose2d(id_dim, channels[0], 2, 1, 0)
        self.blocks = nn.ModuleList()
        for index in range(levels):
            out_channels = channels[index + 1] if index + 1 < levels else 3
            self.blocks.append(AADResBlock(channels[index], out_channels, self.encoder.level_channels[index], id_dim))
        self.detail = DetailStage(width=detail_width, id_dim=id_dim) if detail_width else None

    def core_view(self, image: torch.Tensor) -> torch.Tensor:
        """``image`` at the core's size (an exact 2× box filter: exportable, unlike antialiased resizing)."""
        return F.avg_pool2d(image, 2) if self.detail is not None else image

    def core_attributes(self, image: torch.Tensor) -> list[torch.Tensor]:
        """The core's attribute maps, coarse to fine: the levels the attribute loss compares."""
        return self.encoder(self.core_view(image))

    def attributes(self, target: torch.Tensor) -> list[torch.Tensor]:
        """z_att: the attribute maps of ``target``, coarse to fine, then the detail stage's
        full-resolution features when there is one."""
        levels = self.core_attributes(target)
        return levels + [self.detail.attributes(target)] if self.detail is not None else levels

    def forward(self, target: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        return self.decode(self.attributes(target), identity)

    def decode(self, attributes: list[torch.Tensor], identity: torch.Tensor) -> torch.Tensor:
        """The swapped face from the target's attribute maps and the source identity (training
        reuses the target's attributes for the attribute loss instead of encoding twice)."""
        h = self.start(identity[:, :, None, None])
        for index, block in enumerate(self.blocks):
            h = block(h, attributes[index], identity)
            if index + 1 < len(self.blocks) or self.detail is not None:
                h = F.interpolate(h, scale_factor=2.0, mode="bilinear", align_corners=False)
        if self.detail is not None:
            h = self.detail(h, attributes[len(self.blocks)], identity)
        return torch.tanh(h)


def core_state(generator: AEINet, core: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``generator``'s state with every tensor of ``core`` (a trained 128-px AEI-Net's state)
    in place: the way a 256-px model with a detail stage starts from a trained core."""
    state = generator.state_dict()
    wrong = [name for name, tensor in core.items() if name not in state or state[name].shape != tensor.shape]
    if wrong:
        raise ValueError(f"{len(wrong)} tensors of the core do not fit this generator (first: {wrong[0]}): it needs the core's crop size and widths")
    return {**state, **{name: tensor.to(state[name].dtype) for name, tensor in core.items()}}
