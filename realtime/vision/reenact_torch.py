"""The torch twin of ``reenact.py``: the same thin-plate spline, for a batch of faces on any device
(training pairs on the GPU, and the GPU pipeline). Its rules (control points, smoothing, grid) come
from ``reenact.py``; only the arithmetic is torch's."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from realtime.vision.landmarks import FACE_OVAL, INNER_LIPS
from realtime.vision.masks import LEFT_EYE, RIGHT_EYE
from realtime.vision.reenact import CONTROL_POINTS, GRID, SMOOTHING


def spline_kernel(squared_distance: torch.Tensor) -> torch.Tensor:
    """U(r) = r² log r² from r², 0 at r = 0 (``reenact.spline_kernel``)."""
    return torch.where(squared_distance > 0, squared_distance * torch.log(squared_distance.clamp(min=1e-20)), torch.zeros_like(squared_distance))


def fit_spline(control: torch.Tensor, values: torch.Tensor, smoothing: float = SMOOTHING) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, P, 2) control points → (B, P, D) values: weights (B, P, D) and affine part (B, 3, D)."""
    batch, count, _ = control.shape
    squared = (control[:, :, None, :] - control[:, None, :, :]).pow(2).sum(-1)
    homogeneous = torch.cat([control.new_ones(batch, count, 1), control], dim=2)
    top = torch.cat([spline_kernel(squared) + smoothing * torch.eye(count, dtype=control.dtype, device=control.device), homogeneous], dim=2)
    bottom = torch.cat([homogeneous.transpose(1, 2), control.new_zeros(batch, 3, 3)], dim=2)
    rhs = torch.cat([values, values.new_zeros(batch, 3, values.shape[2])], dim=1)
    solution = torch.linalg.solve(torch.cat([top, bottom], dim=1), rhs)
    return solution[:, :count], solution[:, count:]


def eval_spline(points: torch.Tensor, control: torch.Tensor, weights: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
    """The spline at (N, 2) ``points`` (shared by the batch) → (B, N, D)."""
    squared = (points[None, :, None, :] - control[:, None, :, :]).pow(2).sum(-1)
    homogeneous = torch.cat([points.new_ones(len(points), 1), points], dim=1)
    return spline_kernel(squared) @ weights + homogeneous[None] @ affine


def grid_points(crop_size: int, grid: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    axis = torch.linspace(0.0, crop_size - 1.0, grid, device=device, dtype=dtype)
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)


def source_map(source_points: torch.Tensor, target_points: torch.Tensor, crop_size: int, grid: int = GRID) -> torch.Tensor:
    """(B, S, S, 2): for every pixel of each target crop, the point of its source image to read.
    ``*_points``: (B, 478, 2) landmarks (sources in their images, targets in their crops). Solved
    in float64 where the device has it cheaply (the system is badly scaled for float32), else float32."""
    chosen = torch.tensor(CONTROL_POINTS, device=target_points.device)
    dtype = torch.float64 if target_points.device.type == "cpu" else torch.float32
    scale = float(crop_size)
    control = target_points[:, chosen].to(dtype) / scale
    weights, affine = fit_spline(control, source_points[:, chosen].to(dtype) / scale)
    coarse = eval_spline(grid_points(crop_size, grid, control.device, dtype) / scale, control, weights, affine) * scale
    coarse = coarse.reshape(-1, grid, grid, 2).permute(0, 3, 1, 2).float()
    # corners on the corner pixels, as ``reenact.corner_aligned_resize``
    return F.interpolate(coarse, size=(crop_size, crop_size), mode="bilinear", align_corners=True).permute(0, 2, 3, 1)


def reenact(sources: torch.Tensor, source_points: torch.Tensor, target_points: torch.Tensor, crop_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, H, W) float source images carried onto each target's pose: (B, C, S, S) and where
    that reads inside the source image (B, 1, S, S) in {0, 1}. (The CPU original also cuts the
    target's face outline; a batch on the GPU leaves that to the blend's mask.) Edge pixels repeat,
    as OpenCV's BORDER_REPLICATE."""
    mapping = source_map(source_points, target_points, crop_size)
    height, width = sources.shape[2], sources.shape[3]
    # grid_sample (align_corners=False) has pixel centres at (2i + 1) / size − 1
    normalised = torch.stack([(2 * mapping[..., 0] + 1) / width - 1, (2 * mapping[..., 1] + 1) / height - 1], dim=-1)
    warped = F.grid_sample(sources.float(), normalised, mode="bilinear", padding_mode="border", align_corners=False)
    inside = (mapping[..., 0] >= 0) & (mapping[..., 0] <= width - 1) & (mapping[..., 1] >= 0) & (mapping[..., 1] <= height - 1)
    return warped, inside[:, None].float()


COARSE = 64  # region masks are rasterised at this size and upsampled: they weight losses, not pixels
CONTEXT_BLUR = 16  # the target's face is shrunk by this factor and grown back: its light, not its identity


def inside_polygons(points: torch.Tensor, size: int) -> torch.Tensor:
    """(B, K, 2) polygons in pixels of an S = ``size`` crop → (B, 1, COARSE, COARSE) float: pixel
    centres of a COARSE grid over the crop inside each polygon (even-odd rule)."""
    step = size / COARSE
    axis = (torch.arange(COARSE, device=points.device, dtype=points.dtype) + 0.5) * step - 0.5
    py, px = torch.meshgrid(axis, axis, indexing="ij")
    x1, y1 = points[:, None, None, :, 0], points[:, None, None, :, 1]
    x2, y2 = points.roll(-1, 1)[:, None, None, :, 0], points.roll(-1, 1)[:, None, None, :, 1]
    qy, qx = py[None, :, :, None], px[None, :, :, None]
    crosses = (y1 > qy) != (y2 > qy)
    x_at = (x2 - x1) * (qy - y1) / torch.where(y2 == y1, torch.full_like(y2, 1e-9), y2 - y1) + x1
    return ((crosses & (qx < x_at)).sum(-1) % 2).to(points.dtype)[:, None]


def region_masks(landmarks: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(face outline, eyes and mouth interior) as (B, 1, S, S) in [0, 1]. The holes are where the
    blend shows the target's own eyes and mouth: nothing there is asked of the refiner."""
    outline = inside_polygons(landmarks[:, list(FACE_OVAL)], size)
    holes = torch.clamp(sum(inside_polygons(landmarks[:, list(part)], size) for part in (LEFT_EYE, RIGHT_EYE, INNER_LIPS)), 0, 1)  # type: ignore[arg-type]
    grow = lambda m: F.interpolate(m, size=(size, size), mode="bilinear", align_corners=False)  # noqa: E731
    return grow(outline), grow(F.max_pool2d(holes, 3, 1, 1))  # holes a little wider: their seams fall on skin


def low_pass(images: torch.Tensor, factor: int = CONTEXT_BLUR) -> torch.Tensor:
    size = images.shape[-2:]
    small = F.interpolate(images, scale_factor=1 / factor, mode="area")
    return F.interpolate(small, size=size, mode="bilinear", align_corners=False)


def target_context(targets: torch.Tensor, outline: torch.Tensor) -> torch.Tensor:
    """The target's crop with its face replaced by its blurred self: the light, colour and
    surroundings the refiner must match, without the identity it must not copy."""
    return targets * (1 - outline) + low_pass(targets) * outline
