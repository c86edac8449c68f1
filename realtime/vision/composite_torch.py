"""The blend on the GPU (or any torch device): colour transfer and paste-back in torch.

Same maths and sampling points as the OpenCV path (``colour.py``, ``composite.py``), so the two
agree within a grey level or two. Only the face's box of the frame is read and written.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from realtime.vision.align import invert_affine, shift_affine
from realtime.vision.colour import STD_EPSILON
from realtime.vision.composite import (  # the CPU rules; box_of is also re-exported for the torch code
    DETAIL_RADIUS_PX,
    DETAIL_SIGMA_CROP_PX,
    MAX_DETAIL_SIGMA_PX,
    MIN_DETAIL_SIGMA_PX,
    box_of,
)

# sRGB (D65) → XYZ, and the D65 white point, as OpenCV uses them.
_RGB_TO_XYZ = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]])
_WHITE = np.array([0.950456, 1.0, 1.088754])
_ON_DEVICE: dict[tuple[Hashable, str], torch.Tensor] = {}


def on_device(name: Hashable, device: torch.device, make: Any) -> torch.Tensor:
    """A constant tensor, made once per device: a CUDA graph may not copy from the host while it is
    being captured, so everything constant must already sit on the device."""
    key = (name, str(device))
    if key not in _ON_DEVICE:
        _ON_DEVICE[key] = torch.as_tensor(make()).to(device)
    return _ON_DEVICE[key]


def _rgb_to_xyz(device: torch.device) -> torch.Tensor:
    return on_device("rgb_to_xyz_over_white", device, lambda: (_RGB_TO_XYZ.T / _WHITE).astype(np.float32))


def _xyz_to_rgb(device: torch.device) -> torch.Tensor:
    return on_device("white_times_xyz_to_rgb", device, lambda: (_WHITE[:, None] * np.linalg.inv(_RGB_TO_XYZ).T).astype(np.float32))


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


def affine_grid(source_from_output: torch.Tensor, height: int, width: int, source_height: int, source_width: int) -> torch.Tensor:
    """``grid_sample``'s (1, H, W, 2) grid for output pixel (x, y) reading the source at
    ``source_from_output`` · (x, y, 1): OpenCV's warpAffine sampling points (pixel centres at
    integers). The matrix is a device tensor, so this has fixed shapes and no host transfer: it can
    run inside a CUDA graph. The grid is one (W, 2) row plus one (H, 2) column: one full-size
    kernel instead of a dozen (each a launch and a pass over the grid)."""
    device = source_from_output.device
    m = source_from_output.float()
    # normalised: grid_sample (align_corners=False) puts source pixel centres at (2i+1)/size - 1
    n = torch.stack([m[0] * (2.0 / source_width), m[1] * (2.0 / source_height)])
    shift = torch.stack([n[0, 2] + (1.0 / source_width - 1.0), n[1, 2] + (1.0 / source_height - 1.0)])
    xs = torch.arange(width, device=device, dtype=torch.float32)
    ys = torch.arange(height, device=device, dtype=torch.float32)
    along_x = torch.addcmul(shift, xs[:, None], n[:, 0])  # (W, 2)
    along_y = ys[:, None] * n[:, 1]  # (H, 2)
    return (along_y[:, None, :] + along_x[None, :, :])[None]


def sample_affine(image: torch.Tensor, source_from_output: torch.Tensor, height: int, width: int, padding: str) -> torch.Tensor:
    """Bilinear resampling of (C, H, W) float ``image`` onto a ``height``×``width`` grid (``affine_grid``)."""
    grid = affine_grid(source_from_output, height, width, image.shape[1], image.shape[2])
    return F.grid_sample(image[None].float(), grid, mode="bilinear", padding_mode=padding, align_corners=False)[0]


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


def _inside_polygon(px: torch.Tensor, py: torch.Tensor, polygon: torch.Tensor) -> torch.Tensor:
    """Even-odd rule for every pixel centre at once. px, py: (S, S); polygon: (K, 2)."""
    x1, y1 = polygon[:, 0], polygon[:, 1]
    x2, y2 = polygon.roll(-1, 0)[:, 0], polygon.roll(-1, 0)[:, 1]
    py_ = py[..., None]
    crosses = (y1 > py_) != (y2 > py_)
    x_at = (x2 - x1) * (py_ - y1) / torch.where(y2 == y1, torch.full_like(y2, 1e-9), y2 - y1) + x1
    return ((crosses & (px[..., None] < x_at)).sum(-1) % 2).bool()


def _shrink(polygon: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """Move every vertex ``pixels`` towards the centroid: an erosion for the convex face oval."""
    centre = polygon.mean(dim=0)
    offset = polygon - centre
    length = offset.norm(dim=1, keepdim=True).clamp_min(1e-6)
    return centre + offset * ((length - pixels).clamp_min(0) / length)


MAX_BLUR_RADIUS = 32  # GPU only: a static kernel size, so the mask is one fixed-shape graph (64 px of feather at most)
NO_FEATHER_SIGMA = 1e-3  # a blur this narrow leaves the mask as it is


def mask_from_polygons(points: torch.Tensor, erode_px: torch.Tensor, margin_px: torch.Tensor, sigma: torch.Tensor, crop_size: int, holes: tuple[tuple[int, ...], ...]) -> torch.Tensor:
    """Fixed-shape core of ``face_mask_torch`` (compilable): sizes arrive as tensors, so a face
    moving nearer or further does not change the graph."""
    from realtime.vision.landmarks import FACE_OVAL

    def subset(indices: tuple[int, ...]) -> torch.Tensor:
        return points.index_select(0, on_device(indices, points.device, lambda: np.array(indices, np.int64)))

    coords = torch.arange(crop_size, dtype=torch.float32, device=points.device)
    py, px = torch.meshgrid(coords, coords, indexing="ij")
    mask = _inside_polygon(px, py, _shrink(subset(tuple(FACE_OVAL)), erode_px))
    for hole in holes:
        mask = mask & ~_inside_polygon(px, py, _shrink(subset(tuple(hole)), -margin_px))
    x = torch.arange(-MAX_BLUR_RADIUS, MAX_BLUR_RADIUS + 1, device=points.device, dtype=torch.float32)
    kernel = torch.exp(-(x**2) / (2 * sigma.clamp_min(1e-3) ** 2))
    kernel = kernel / kernel.sum()
    return _blur_along(_blur_along(mask.float(), kernel, 1), kernel, 0)


def _blur_along(image: torch.Tensor, kernel: torch.Tensor, dim: int) -> torch.Tensor:
    """(H, W) image convolved along ``dim`` (1: rows, 0: columns) with ``kernel``
    (2·MAX_BLUR_RADIUS + 1 taps), edges reflected. A convolution even when compiled: written as
    a sum of shifted copies, Inductor fuses it into one kernel (~30 µs less for a 256² mask) but
    compiles 20-55 s longer: the start matters more than those microseconds."""
    r = MAX_BLUR_RADIUS
    padded = F.pad(image[None, None], (r, r, 0, 0) if dim == 1 else (0, 0, r, r), mode="reflect")
    return F.conv2d(padded, kernel.view(1, 1, 1, -1) if dim == 1 else kernel.view(1, 1, -1, 1))[0, 0]


def mask_holes(keep_mouth: bool, keep_eyes: bool) -> tuple[tuple[int, ...], ...]:
    from realtime.vision.landmarks import INNER_LIPS
    from realtime.vision.masks import LEFT_EYE, RIGHT_EYE

    return ((tuple(INNER_LIPS),) if keep_mouth else ()) + ((LEFT_EYE, RIGHT_EYE) if keep_eyes else ())


def mask_sizes(landmarks_in_crop: np.ndarray, erode: float, blur: float) -> tuple[float, float, float]:
    """Erosion, hole margin and blur sigma in crop pixels: ``masks.mask_sizes``' numbers, with the
    feather radius capped at ``MAX_BLUR_RADIUS`` (the GPU's fixed kernel) and a near-zero sigma
    standing for no feather (the graph always blurs)."""
    from realtime.vision.landmarks import inter_ocular_distance
    from realtime.vision.masks import mask_sizes as cpu_mask_sizes

    erode_px, margin_px, radius = cpu_mask_sizes(inter_ocular_distance(landmarks_in_crop), erode, blur)
    radius = min(radius, MAX_BLUR_RADIUS)
    return float(erode_px), float(margin_px), radius / 2.0 if radius > 0 else NO_FEATHER_SIGMA


def face_mask_torch(landmarks_in_crop: np.ndarray, crop_size: int, device: torch.device | str, *, erode: float, blur: float, keep_mouth: bool, keep_eyes: bool) -> torch.Tensor:
    """The GPU twin of ``masks.face_mask``: the oval (shrunk instead of morphologically eroded),
    optional mouth/eye holes, a Gaussian feather; all relative to the eye distance."""
    scalars = torch.tensor(mask_sizes(landmarks_in_crop, erode, blur), dtype=torch.float32)
    points = torch.as_tensor(landmarks_in_crop, dtype=torch.float32)
    packed = torch.cat([points.reshape(-1), scalars]).to(device)
    points_d, scalars_d = packed[:-3].view(-1, 2), packed[-3:]
    return mask_from_polygons(points_d, scalars_d[0], scalars_d[1], scalars_d[2], crop_size, mask_holes(keep_mouth, keep_eyes))


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
