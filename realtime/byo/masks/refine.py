"""FaceFusion's finish for occlusion and region masks (shared/BYO-MODELS-2.md §2.4), as a torch
function of a batch: a Gaussian blur, then m ← (clip(m, 0.5, 1) − 0.5) · 2, which pulls the edge
inwards and re-saturates it. FaceFusion blurs with σ = 5 px whatever its crop; here σ follows the
crop (5 px on a 256-px crop, §5.2), so a 128-px inswapper crop and a 512-px one get the same edge
relative to the face."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

BLUR_SIGMA_AT_256 = 5.0  # FaceFusion's σ in crop pixels, for the 256-px crop it is given most often
REMAP_FLOOR = 0.5  # below it: not face; from it to 1: stretched back over [0, 1]


def blur_sigma(crop_size: int) -> float:
    return BLUR_SIGMA_AT_256 * crop_size / 256.0


def refine_mask(mask: torch.Tensor) -> torch.Tensor:
    """(N, S, S) in [0, 1] → the same, blurred (σ ``blur_sigma(S)``, edges reflected) and remapped.
    A mask of ones stays ones, zeros stay zeros: the blur keeps constants and the remap's ends."""
    size = mask.shape[-1]
    sigma = blur_sigma(size)
    radius = min(math.ceil(3 * sigma), size - 1)
    x = torch.arange(-radius, radius + 1, device=mask.device, dtype=torch.float32)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).to(mask.dtype)
    image = mask[:, None]
    image = F.conv2d(F.pad(image, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    image = F.conv2d(F.pad(image, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))
    return ((image[:, 0].clamp(REMAP_FLOOR, 1.0) - REMAP_FLOOR) / (1.0 - REMAP_FLOOR)).clamp(0.0, 1.0)
