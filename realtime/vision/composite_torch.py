"""The blend on the GPU (or any torch device): colour transfer and paste-back in torch.

Same maths and sampling points as the OpenCV path (``colour.py``, ``composite.py``), so the two
agree within a grey level or two. Only the face's box of the frame is read and written.
"""

from __future__ import annotations

from typing import Any

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


MAX_BLUR_RADIUS = 32  # static kernel size, so the mask is one fixed-shape graph


def mask_from_polygons(points: torch.Tensor, erode_px: torch.Tensor, margin_px: torch.Tensor, sigma: torch.Tensor, crop_size: int, holes: tuple[tuple[int, ...], ...]) -> torch.Tensor:
    """Fixed-shape core of ``face_mask_torch`` (compilable): sizes arrive as tensors, so a face
    moving nearer or further does not change the graph."""
    from realtime.vision.landmarks import FACE_OVAL

    coords = torch.arange(crop_size, dtype=torch.float32, device=points.device)
    py, px = torch.meshgrid(coords, coords, indexing="ij")
    mask = _inside_polygon(px, py, _shrink(points[list(FACE_OVAL)], erode_px))
    for hole in holes:
        mask = mask & ~_inside_polygon(px, py, _shrink(points[list(hole)], -margin_px))
    x = torch.arange(-MAX_BLUR_RADIUS, MAX_BLUR_RADIUS + 1, device=points.device, dtype=torch.float32)
    kernel = torch.exp(-(x**2) / (2 * sigma.clamp_min(1e-3) ** 2))
    kernel = kernel / kernel.sum()
    image = mask.float()[None, None]
    r = MAX_BLUR_RADIUS
    image = F.conv2d(F.pad(image, (r, r, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    image = F.conv2d(F.pad(image, (0, 0, r, r), mode="reflect"), kernel.view(1, 1, -1, 1))
    return image[0, 0]


def face_mask_torch(
    landmarks_in_crop: np.ndarray, crop_size: int, device: torch.device | str, *, erode: float, blur: float, keep_mouth: bool, keep_eyes: bool, core: Any = None
) -> torch.Tensor:
    """The GPU twin of ``masks.face_mask``: the oval (shrunk instead of morphologically eroded),
    optional mouth/eye holes, a Gaussian feather; all relative to the eye distance."""
    from realtime.vision.landmarks import INNER_LIPS, inter_ocular_distance
    from realtime.vision.masks import LEFT_EYE, RIGHT_EYE

    iod = max(inter_ocular_distance(landmarks_in_crop), 1.0)
    radius = min(int(round(blur * iod)), MAX_BLUR_RADIUS)
    holes = ((INNER_LIPS,) if keep_mouth else ()) + ((LEFT_EYE, RIGHT_EYE) if keep_eyes else ())
    scalars = torch.tensor([erode * iod, max(1.0, round(0.04 * iod)), radius / 2.0 if radius > 0 else 1e-3], dtype=torch.float32)
    points = torch.as_tensor(landmarks_in_crop, dtype=torch.float32)
    packed = torch.cat([points.reshape(-1), scalars]).to(device, non_blocking=True)  # one upload
    points_d, scalars_d = packed[:-3].view(-1, 2), packed[-3:]
    fn = core or mask_from_polygons
    return fn(points_d, scalars_d[0], scalars_d[1], scalars_d[2], crop_size, holes)


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


class Compiled:
    """A function compiled by torch.compile on first use and replayed as a CUDA graph (fixed
    shapes: one graph), falling back to plain eager torch, with one log line, if compilation is
    not possible here. Profiling showed the blend's GPU work is ~0.2 ms a frame and its CPU-side
    launching ~2 ms: graph replay is what removes the launching. Graphs of one process share a
    memory pool, so a replay may overwrite another graph's output: outputs are cloned (they are
    small: a mask, a crop, a few statistics)."""

    def __init__(self, fn: Any, enabled: bool) -> None:
        self.fn = fn
        self.compiled: Any = None
        self.enabled = enabled

    def __call__(self, *args: Any) -> Any:
        if not self.enabled:
            return self.fn(*args)
        if self.compiled is None:
            self.compiled = torch.compile(self.fn, dynamic=False, fullgraph=True, mode="reduce-overhead")
        try:
            torch.compiler.cudagraph_mark_step_begin()
            return self.compiled(*args).clone()
        except Exception as exc:  # noqa: BLE001 - an optimisation: never worth a broken frame
            import logging

            logging.getLogger("realtime").warning("blend: torch.compile failed (%s); using eager torch", type(exc).__name__)
            self.enabled = False
            return self.fn(*args)
