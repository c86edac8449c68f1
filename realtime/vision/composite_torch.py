"""The torch twin of ``composite.py``: paste-back over the face's box only, with the detail band,
on the GPU (or any torch device). Same maths and sampling points as the OpenCV path, so the two
agree within a grey level or two; its rules (the band's sizes) come from ``composite.py``. The
mask and the colour match it pastes are ``masks_torch``'s and ``colour_torch``'s."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from realtime.vision.align import box_of, invert_affine, shift_affine
from realtime.vision.align_torch import affine_grid
from realtime.vision.composite import DETAIL_RADIUS_PX, DETAIL_SIGMA_CROP_PX, MAX_DETAIL_SIGMA_PX, MIN_DETAIL_SIGMA_PX


def detail_band_torch(region: torch.Tensor, region_from_crop: torch.Tensor) -> torch.Tensor:
    """``composite.detail_band`` at ``composite.detail_sigma`` on a (3, H, W) float region, its
    sigma computed from the device matrix (fixed shapes: it runs inside a CUDA graph)."""
    linear = region_from_crop[:, :2]
    scale = (linear[0, 0] * linear[1, 1] - linear[0, 1] * linear[1, 0]).abs().sqrt()
    sigma = (DETAIL_SIGMA_CROP_PX * scale).clamp(1e-3, MAX_DETAIL_SIGMA_PX)
    r = DETAIL_RADIUS_PX
    x = torch.arange(-r, r + 1, device=region.device, dtype=torch.float32)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = region.shape[0]  # one depthwise kernel a channel, made contiguous (cuDNN wants it so)
    rows = F.conv2d(F.pad(region[None], (r, r, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
    blurred = F.conv2d(F.pad(rows, (0, 0, r, r), mode="replicate"), kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)[0]
    return (region - blurred) * (sigma >= MIN_DETAIL_SIGMA_PX)


def paste_region(
    region: torch.Tensor, crop: torch.Tensor, mask: torch.Tensor, crop_from_region: torch.Tensor, opacity: torch.Tensor | float,
    detail: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """``region`` (H, W, 3) uint8 with the crop composited over it, as a new tensor.
    crop: (S, S, 3) 0–255; mask: (S, S) in [0, 1]; crop_from_region: (2, 3) device tensor;
    detail: (strength, region_from_crop) to add that share of the region's ``detail_band_torch``.
    Float32 throughout: FP16 sampling coordinates are off by up to 1/16 px on a 256-px crop,
    which shows as grey-level errors on sharp detail, and a face box is too small for FP16 to pay."""
    height, width = region.shape[:2]
    grid = affine_grid(crop_from_region, height, width, crop.shape[0], crop.shape[1])  # one grid for colour and mask
    colour = F.grid_sample(crop.permute(2, 0, 1).float()[None], grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
    if detail is not None:
        strength, region_from_crop = detail
        band = detail_band_torch(region.permute(2, 0, 1).float(), region_from_crop)
        colour = (colour + strength * band).clamp(0.0, 255.0)  # at strength 0, the colour exactly
    alpha = F.grid_sample(mask.float()[None, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0, 0]
    alpha = (alpha.clamp(0, 1) * opacity)[..., None]
    # where alpha is 0 lerp gives ``base`` back exactly: pixels outside the face stay as they were
    return torch.lerp(region.float(), colour.permute(1, 2, 0), alpha).round_().clamp_(0, 255).to(torch.uint8)


def paste_crop_torch(frame: torch.Tensor, crop: torch.Tensor, mask: torch.Tensor, frame_from_crop: np.ndarray, *, opacity: float = 1.0) -> None:
    """Composite in place, over the crop's box only. frame: (H, W, 3) uint8; crop: (S, S, 3)
    uint8 or float 0–255; mask: (S, S) float in [0, 1]; all on the same device."""
    height, width = frame.shape[:2]
    box = box_of(frame_from_crop, crop.shape[0], width, height)
    if box is None:
        return
    x0, y0, x1, y1 = box
    crop_from_region = shift_affine(invert_affine(frame_from_crop), x0, y0)
    matrix = torch.as_tensor(crop_from_region, dtype=torch.float32, device=frame.device)
    frame[y0:y1, x0:x1] = paste_region(frame[y0:y1, x0:x1], crop, mask, matrix, opacity)
