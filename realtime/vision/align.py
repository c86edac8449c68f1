"""Alignment: canonical templates, similarity estimation and crop warps (OpenCV and torch).

Convention (OpenCV's): pixel (u, v) has its centre at integer coordinates; a 2×3 matrix
``crop_from_frame`` maps frame pixels to crop pixels, and ``frame_from_crop`` is its inverse.
Both warps below sample the same points, so CPU and GPU crops agree to interpolation rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

from realtime.choices import TemplateName

if TYPE_CHECKING:
    import torch

Template = TemplateName

# ArcFace's 5-point template for 112×112 crops (eyes, nose tip, mouth corners, as seen in the image).
ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)
# A looser, FFHQ-like framing: eyes 25% of the width apart, the whole head and some hair in view.
FFHQ_UNIT = np.array([[0.375, 0.45], [0.625, 0.45], [0.5, 0.565], [0.405, 0.665], [0.595, 0.665]])


def template_points(crop_size: int, kind: Template = "arcface") -> np.ndarray:
    """(5, 2) template positions in a ``crop_size``² crop."""
    if kind == "arcface":
        return ARCFACE_112 * (crop_size / 112.0)
    if kind == "ffhq":
        return FFHQ_UNIT * crop_size
    raise ValueError(f"unknown template {kind!r}")


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2×3 similarity (rotation, uniform scale, translation) mapping ``src`` onto ``dst`` in the
    least-squares sense (Umeyama 1991, reflections excluded). src, dst: (N, 2), N ≥ 2."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mean_src, mean_dst = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - mean_src, dst - mean_dst
    covariance = dst_c.T @ src_c / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rotation = u @ np.diag(sign) @ vt
    variance = (src_c**2).sum() / len(src)
    scale = float((singular * sign).sum() / variance) if variance > 0 else 1.0
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = mean_dst - scale * rotation @ mean_src
    return matrix


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2×3 affine matrix (closed form: called per face and frame, where
    ``np.linalg.inv`` of the 3×3 cost ~10× more)."""
    (a, b, c), (d, e, f) = matrix.tolist()
    det = a * e - b * d
    return np.array([[e / det, -b / det, (b * f - c * e) / det], [-d / det, a / det, (c * d - a * f) / det]])


def shift_affine(matrix: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``matrix`` applied to points given relative to (dx, dy): ``matrix`` · translate(dx, dy)."""
    shifted = matrix.astype(np.float64, copy=True)
    shifted[:, 2] += matrix[:, :2] @ (dx, dy)
    return shifted


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 2) points through a 2×3 matrix."""
    return points @ matrix[:, :2].T + matrix[:, 2]


def crop_from_frame_matrix(landmarks_5: np.ndarray, crop_size: int, kind: Template = "arcface") -> np.ndarray:
    """The 2×3 ``crop_from_frame`` that puts five face points on the template."""
    return estimate_similarity(landmarks_5, template_points(crop_size, kind))


def warp_crop(frame: np.ndarray, crop_from_frame: np.ndarray, crop_size: int) -> np.ndarray:
    """CPU crop: (crop_size, crop_size, C) from an H×W×C frame, bilinear, zeros outside."""
    return cv2.warpAffine(frame, crop_from_frame, (crop_size, crop_size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def warp_crop_torch(frame: torch.Tensor, crops_from_frame: Sequence[np.ndarray], crop_size: int, batch: int | None = None) -> torch.Tensor:
    """GPU (or CPU) crops with ``warp_crop``'s sampling points: (batch, 3, crop_size, crop_size)
    float 0–255 from ``frame``, (H, W, 3) uint8 on any device, one per matrix; rows past the
    matrices stay zero. Only each crop's box of the frame is read and converted, never the whole
    frame, and the matrices go to the device in one copy (queued from pinned memory on CUDA)."""
    import torch

    from realtime.vision.composite_torch import box_of, sample_affine

    height, width = frame.shape[:2]
    out = torch.zeros((batch or len(crops_from_frame), 3, crop_size, crop_size), device=frame.device)
    boxes: list[tuple[int, tuple[int, int, int, int]]] = []
    matrices = []
    for index, crop_from_frame in enumerate(crops_from_frame):
        frame_from_crop = invert_affine(crop_from_frame)
        box = box_of(frame_from_crop, crop_size, width, height)
        if box is not None:
            boxes.append((index, box))
            matrices.append(frame_from_crop - np.array([[0, 0, box[0]], [0, 0, box[1]]]))  # box_from_crop
    if not boxes:
        return out
    stacked = torch.from_numpy(np.stack(matrices).astype(np.float32))
    on_device = (stacked.pin_memory() if frame.device.type == "cuda" else stacked).to(frame.device, non_blocking=True)
    for (index, (x0, y0, x1, y1)), matrix in zip(boxes, on_device, strict=True):
        out[index] = sample_affine(frame[y0:y1, x0:x1].permute(2, 0, 1).float(), matrix, crop_size, crop_size, "zeros")
    return out
