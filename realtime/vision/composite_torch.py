"""The blend on the GPU (or any torch device): colour transfer and paste-back in torch.

Same maths and sampling points as the OpenCV path (``colour.py``, ``composite.py``), so the two
agree within a grey level or two. Only the face's box of the frame is read and written.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

# sRGB (D65) → XYZ, and the D65 white point, as OpenCV uses them.
_RGB_TO_XYZ = torch.tensor([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]])
_WHITE = torch.tensor([0.950456, 1.0, 1.088754])


def _linear(c: torch.Tensor) -> torch.Tensor:
    return torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _gamma(c: torch.Tensor) -> torch.Tensor:
    c = c.clamp(0, 1)
    return torch.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1 / 2.4) - 0.055)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3) float RGB in [0, 1] → LAB (L 0–100)."""
    xyz = _linear(rgb.float()) @ _RGB_TO_XYZ.to(rgb.device).T / _WHITE.to(rgb.device)
    f = torch.where(xyz > 0.008856, xyz.clamp_min(1e-12) ** (1 / 3), 7.787 * xyz + 16 / 116)
    return torch.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], dim=-1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    fy = (lab[..., 0] + 16) / 116
    fx, fz = fy + lab[..., 1] / 500, fy - lab[..., 2] / 200
    f = torch.stack([fx, fy, fz], dim=-1)
    xyz = torch.where(f > 0.206893, f**3, (f - 16 / 116) / 7.787) * _WHITE.to(lab.device)
    return _gamma(xyz @ torch.linalg.inv(_RGB_TO_XYZ).to(lab.device).T)


def masked_stats_torch(lab: torch.Tensor, mask: torch.Tensor, threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Mean and std per channel where ``mask`` > threshold, as weighted sums (no host sync)."""
    weight = (mask > threshold).to(lab.dtype)[..., None]
    count = weight.sum()
    mean = (lab * weight).sum(dim=(0, 1)) / count.clamp_min(1)
    variance = (((lab - mean) ** 2) * weight).sum(dim=(0, 1)) / count.clamp_min(1)
    return mean, variance.sqrt() + 1e-3


def box_of(frame_from_crop: np.ndarray, size: int, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The frame pixels a warped ``size``² crop can touch, clipped to the frame; None if none."""
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64)
    mapped = corners @ frame_from_crop[:, :2].T + frame_from_crop[:, 2]
    x0, y0 = np.floor(mapped.min(axis=0)).astype(int)
    x1, y1 = np.ceil(mapped.max(axis=0)).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1 + 1, width), min(y1 + 1, height)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def paste_crop_torch(frame: torch.Tensor, crop: torch.Tensor, mask: torch.Tensor, frame_from_crop: np.ndarray, *, opacity: float = 1.0) -> None:
    """Composite in place. frame: (H, W, 3) uint8; crop: (S, S, 3) uint8 or float 0–255;
    mask: (S, S) float in [0, 1]; all on the same device."""
    size = crop.shape[0]
    height, width = frame.shape[:2]
    box = box_of(frame_from_crop, size, width, height)
    if box is None:
        return
    x0, y0, x1, y1 = box
    crop_from_frame = np.linalg.inv(np.vstack([frame_from_crop, [0, 0, 1]]))[:2]
    device = frame.device
    # float32 throughout: FP16 sampling coordinates are off by up to 1/16 px on a 256-px crop,
    # which shows as grey-level errors on sharp detail, and a face box is too small for FP16 to pay
    dtype = torch.float32
    xs = torch.arange(x0, x1, device=device, dtype=torch.float32)
    ys = torch.arange(y0, y1, device=device, dtype=torch.float32)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    m = torch.as_tensor(crop_from_frame, dtype=torch.float32, device=device)
    cx = m[0, 0] * gx + m[0, 1] * gy + m[0, 2]
    cy = m[1, 0] * gx + m[1, 1] * gy + m[1, 2]
    grid = torch.stack([(2 * cx + 1) / size - 1, (2 * cy + 1) / size - 1], dim=-1)[None].to(dtype)
    layers = torch.cat([crop.permute(2, 0, 1).to(dtype), mask[None].to(dtype)], dim=0)[None]
    colour = F.grid_sample(layers[:, :3], grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
    alpha = F.grid_sample(layers[:, 3:], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0, 0]
    alpha = (alpha.clamp(0, 1) * opacity)[..., None]
    region = frame[y0:y1, x0:x1].to(dtype)
    blended = region + alpha * (colour.permute(1, 2, 0) - region)
    frame[y0:y1, x0:x1] = blended.round().clamp(0, 255).to(torch.uint8)
