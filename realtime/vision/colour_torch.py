"""The torch twin of ``colour.py``: LAB conversion with OpenCV's constants, and the colour match's
statistics and transfer, on any device with fixed shapes and no host sync (the blend replays it
inside a CUDA graph). Its rules come from ``colour.py`` (``STD_EPSILON`` here; the blend's match,
``stages/blend/region.py``, takes the others from there too)."""

from __future__ import annotations

import numpy as np
import torch

from realtime.gpu.constants import graph_constant
from realtime.vision.colour import STD_EPSILON

# sRGB (D65) → XYZ, and the D65 white point, as OpenCV uses them.
_RGB_TO_XYZ = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]])
_WHITE = np.array([0.950456, 1.0, 1.088754])


def _rgb_to_xyz(device: torch.device) -> torch.Tensor:
    return graph_constant("rgb_to_xyz_over_white", device, lambda: (_RGB_TO_XYZ.T / _WHITE).astype(np.float32))


def _xyz_to_rgb(device: torch.device) -> torch.Tensor:
    return graph_constant("white_times_xyz_to_rgb", device, lambda: (_WHITE[:, None] * np.linalg.inv(_RGB_TO_XYZ).T).astype(np.float32))


def _linear(c: torch.Tensor) -> torch.Tensor:
    return torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _gamma(c: torch.Tensor) -> torch.Tensor:
    c = c.clamp(0, 1)
    return torch.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1 / 2.4) - 0.055)


def _mix(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """``x @ matrix`` for (..., 3) × (3, 3) as three multiply-adds: as a matmul, each colour
    conversion of a 256² crop runs as a whole GEMM launch (~40 µs for K = 3); this is pointwise,
    so torch.compile fuses it into the neighbouring kernels."""
    return x[..., 0:1] * matrix[0] + x[..., 1:2] * matrix[1] + x[..., 2:3] * matrix[2]


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3) float RGB in [0, 1] → LAB (L 0–100)."""
    xyz = _mix(_linear(rgb.float()), _rgb_to_xyz(rgb.device))
    f = torch.where(xyz > 0.008856, xyz.clamp_min(1e-12) ** (1 / 3), 7.787 * xyz + 16 / 116)
    return torch.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], dim=-1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    fy = (lab[..., 0] + 16) / 116
    fx, fz = fy + lab[..., 1] / 500, fy - lab[..., 2] / 200
    f = torch.stack([fx, fy, fz], dim=-1)
    xyz = torch.where(f > 0.206893, f**3, (f - 16 / 116) / 7.787)
    return _gamma(_mix(xyz, _xyz_to_rgb(lab.device)))


def masked_stats_torch(lab: torch.Tensor, mask: torch.Tensor, threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std per channel where ``mask`` > threshold, as weighted sums (no host sync)."""
    weight = (mask > threshold).to(lab.dtype)[..., None]
    count = weight.sum()
    mean = (lab * weight).sum(dim=(0, 1)) / count.clamp_min(1)
    variance = (((lab - mean) ** 2) * weight).sum(dim=(0, 1)) / count.clamp_min(1)
    return mean, variance.sqrt() + STD_EPSILON


def colour_statistics(generated: torch.Tensor, original_small: torch.Tensor, small_mask: torch.Tensor, step: int) -> torch.Tensor:
    """(4, 3): target mean, target std, generated mean, generated std in LAB, inside the mask.
    generated: (S, S, 3) 0–255; original_small: (S/step, S/step, 3) 0–1; small_mask: (S/step)²."""
    lab_generated = rgb_to_lab(generated[step // 2 :: step, step // 2 :: step] / 255.0)
    target_mean, target_std = masked_stats_torch(rgb_to_lab(original_small), small_mask)
    source_mean, source_std = masked_stats_torch(lab_generated, small_mask)
    return torch.stack([target_mean, target_std, source_mean, source_std])


def colour_apply(generated: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Move the generated crop's LAB statistics: params rows are source mean, gain, target mean."""
    lab = (rgb_to_lab(generated / 255.0) - params[0]) * params[1] + params[2]
    return lab_to_rgb(lab) * 255.0
