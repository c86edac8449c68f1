"""Carry a source photo's own pixels to a target face's pose and expression: a thin-plate spline
through both faces' landmarks maps every pixel of the target's aligned crop to a point of the
source photo, and the photo is sampled there. The identity then comes from the photo itself, not
from an embedding a generator learned to satisfy (issue 33, design b: "reenact and refine").

Pure geometry on NumPy; ``reenact_torch`` is its batched twin for training and the GPU and takes
its rules (control points, regularisation, grid) from here.

Coordinates are pixels with centres at integers (OpenCV's convention). The spline is solved in
coordinates scaled by the crop size, so its regularisation means the same at any resolution.
"""

from __future__ import annotations

import cv2
import numpy as np

from realtime.vision.landmarks import FACE_OVAL, INNER_LIPS, LEFT_EYE_CORNERS, NOSE_TIP, RIGHT_EYE_CORNERS
from realtime.vision.masks import LEFT_EYE, RIGHT_EYE

# The spline's control points: the face's outline and features densely, the rest of the mesh
# sparsely (478 points would make a 481² system per face for little gain: neighbouring mesh
# points move together).
_FEATURES = (
    *FACE_OVAL, *LEFT_EYE, *RIGHT_EYE, *INNER_LIPS, *LEFT_EYE_CORNERS, *RIGHT_EYE_CORNERS, NOSE_TIP,
    61, 291, 0, 17, 37, 267, 84, 314,  # outer lips
    70, 105, 107, 300, 334, 336,  # brows
    6, 168, 197, 195, 5, 4, 98, 327,  # nose bridge and wings
)
CONTROL_POINTS: tuple[int, ...] = tuple(sorted(set(_FEATURES) | set(range(0, 468, 6))))
SMOOTHING = 1e-3  # the spline's regularisation (in crop-size units): landmark jitter is not followed exactly
GRID = 64  # the map is evaluated on GRID × GRID points and interpolated: a spline this smooth needs no more


def spline_kernel(squared_distance: np.ndarray) -> np.ndarray:
    """The thin-plate spline's radial basis U(r) = r² log r², from r² (0 at r = 0)."""
    return np.where(squared_distance > 0, squared_distance * np.log(np.maximum(squared_distance, 1e-20)), 0.0)


def fit_spline(control: np.ndarray, values: np.ndarray, smoothing: float = SMOOTHING) -> tuple[np.ndarray, np.ndarray]:
    """Weights (P, D) and affine part (3, D) of the spline taking ``control`` (P, 2) to ``values``
    (P, D): an affine map is reproduced exactly; the bending between points is the least."""
    count = len(control)
    squared = ((control[:, None, :] - control[None, :, :]) ** 2).sum(-1)
    homogeneous = np.hstack([np.ones((count, 1)), control])
    system = np.zeros((count + 3, count + 3))
    system[:count, :count] = spline_kernel(squared) + smoothing * np.eye(count)
    system[:count, count:] = homogeneous
    system[count:, :count] = homogeneous.T
    rhs = np.vstack([values, np.zeros((3, values.shape[1]))])
    solution = np.linalg.solve(system, rhs)
    return solution[:count], solution[count:]


def eval_spline(points: np.ndarray, control: np.ndarray, weights: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """The spline at ``points`` (N, 2) → (N, D)."""
    squared = ((points[:, None, :] - control[None, :, :]) ** 2).sum(-1)
    return spline_kernel(squared) @ weights + np.hstack([np.ones((len(points), 1)), points]) @ affine


def grid_points(crop_size: int, grid: int = GRID) -> np.ndarray:
    """The (grid², 2) crop pixels the map is evaluated at: both ends included, row by row."""
    axis = np.linspace(0.0, crop_size - 1.0, grid)
    xs, ys = np.meshgrid(axis, axis)
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def corner_aligned_resize(coarse: np.ndarray, size: int) -> np.ndarray:
    """Bilinear interpolation of a (G, G, C) grid whose corners sit on the output's corner pixels
    (``align_corners=True`` in torch's terms; OpenCV's resize aligns pixel edges instead)."""
    grid = coarse.shape[0]
    position = np.linspace(0.0, grid - 1.0, size)
    low = np.clip(np.floor(position).astype(int), 0, grid - 2)
    frac = (position - low)[:, None]
    rows = coarse[low] * (1 - frac[:, :, None]) + coarse[low + 1] * frac[:, :, None]  # (size, G, C)
    cols = rows[:, low] * (1 - frac[None, :, :]) + rows[:, low + 1] * frac[None, :, :]
    return cols.astype(np.float32)


def reenact(source: np.ndarray, source_landmarks: np.ndarray, target_landmarks_in_crop: np.ndarray, crop_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The source photo (H×W×3 uint8) carried onto the target's pose in its ``crop_size``² crop,
    and where that holds real photo pixels (S×S float32 in [0, 1]: inside the photo and inside the
    target's face outline, where the spline is pinned by landmarks)."""
    mapping = corner_aligned_resize(coarse_map(source_landmarks, target_landmarks_in_crop, crop_size), crop_size)
    warped = cv2.remap(source, mapping[..., 0], mapping[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    height, width = source.shape[:2]
    inside = (mapping[..., 0] >= 0) & (mapping[..., 0] <= width - 1) & (mapping[..., 1] >= 0) & (mapping[..., 1] <= height - 1)
    outline = np.zeros((crop_size, crop_size), np.uint8)
    cv2.fillPoly(outline, [np.round(target_landmarks_in_crop[list(FACE_OVAL)]).astype(np.int32)], 1)
    return warped, (inside & outline.astype(bool)).astype(np.float32)


def coarse_map(source_points: np.ndarray, target_points: np.ndarray, crop_size: int, grid: int = GRID) -> np.ndarray:
    """For the crop's GRID × GRID lattice (``grid_points``), the source photo's point to read:
    (G, G, 2). ``target_points``: the target's landmarks in its crop; ``source_points``: the
    source's in its photo."""
    chosen = list(CONTROL_POINTS)
    scale = float(crop_size)
    control = target_points[chosen] / scale
    weights, affine = fit_spline(control, source_points[chosen] / scale)
    coarse = eval_spline(grid_points(crop_size, grid) / scale, control, weights, affine) * scale
    return coarse.reshape(grid, grid, 2)
