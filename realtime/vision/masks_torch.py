"""The torch twin of ``masks.py``: the face mask built on any device as one fixed-shape function
(the oval shrunk rather than morphologically eroded, polygon holes, a Gaussian feather), so the
blend can compile it and replay it inside a CUDA graph. Its sizes are ``masks.mask_sizes``' rules,
with the feather capped where the GPU's fixed kernel must be."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from realtime.gpu.constants import graph_constant
from realtime.vision.landmarks import FACE_OVAL, INNER_LIPS, inter_ocular_distance
from realtime.vision.masks import LEFT_EYE, RIGHT_EYE
from realtime.vision.masks import mask_sizes as cpu_mask_sizes


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

    def subset(indices: tuple[int, ...]) -> torch.Tensor:
        return points.index_select(0, graph_constant(indices, points.device, lambda: np.array(indices, np.int64)))

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
    return ((tuple(INNER_LIPS),) if keep_mouth else ()) + ((LEFT_EYE, RIGHT_EYE) if keep_eyes else ())


def mask_sizes(landmarks_in_crop: np.ndarray, erode: float, blur: float) -> tuple[float, float, float]:
    """Erosion, hole margin and blur sigma in crop pixels: ``masks.mask_sizes``' numbers, with the
    feather radius capped at ``MAX_BLUR_RADIUS`` (the GPU's fixed kernel) and a near-zero sigma
    standing for no feather (the graph always blurs)."""
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
