"""Alignment: canonical templates, similarity estimation and the OpenCV crop warp (its torch twin,
``align_torch.warp_crop_torch``, samples the same points).

Convention (OpenCV's): pixel (u, v) has its centre at integer coordinates; a 2×3 matrix
``crop_from_frame`` maps frame pixels to crop pixels, and ``frame_from_crop`` is its inverse.
Both warps sample the same points, so CPU and GPU crops agree to interpolation rounding.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from realtime.choices import TemplateName

Template = TemplateName

# ArcFace's 5-point template for 112×112 crops (eyes, nose tip, mouth corners, as seen in the image).
ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)
# A looser, FFHQ-like framing: eyes 25% of the width apart, the whole head and some hair in view.
FFHQ_UNIT = np.array([[0.375, 0.45], [0.625, 0.45], [0.5, 0.565], [0.405, 0.665], [0.595, 0.665]])


# Other tools' framings, as fractions of the crop, for users' own models trained on them:
# insightface's 128-px crop is ArcFace's 112 points shifted 8 px right, not scaled (inswapper and
# the models trained on its crops); FaceFusion's symmetric ArcFace (SimSwap, GHOST) and its FFHQ and
# MTCNN framings.
UNIT_TEMPLATES = {
    "insightface_128": (ARCFACE_112 + [8.0, 0.0]) / 128.0,
    "arcface_112_v1": np.array([[0.35473214, 0.45658929], [0.64526786, 0.45658929], [0.5, 0.61154464], [0.37913393, 0.776875], [0.62086607, 0.776875]]),
    "ffhq_512": np.array([[0.37691676, 0.46864664], [0.62285697, 0.46912813], [0.50123859, 0.61331904], [0.39308822, 0.72541100], [0.61150205, 0.72490465]]),
    "mtcnn_512": np.array([[0.36562865, 0.46733799], [0.63305391, 0.46585885], [0.50019127, 0.61942959], [0.39032951, 0.77598822], [0.61178945, 0.77476328]]),
    "ffhq": FFHQ_UNIT,
}


def template_points(crop_size: int, kind: Template = "arcface") -> np.ndarray:
    """(5, 2) template positions in a ``crop_size``² crop."""
    if kind == "arcface":
        return ARCFACE_112 * (crop_size / 112.0)
    if kind in UNIT_TEMPLATES:
        return UNIT_TEMPLATES[kind] * crop_size
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


def box_of(frame_from_crop: np.ndarray, size: int, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The frame pixels a warped ``size``² crop can touch, clipped to the frame; None if none."""
    (a, b, c), (d, e, f) = frame_from_crop.tolist()  # Python floats: per face and frame, numpy's overhead dominated
    xs = (c, c + a * size, c + b * size, c + (a + b) * size)
    ys = (f, f + d * size, f + e * size, f + (d + e) * size)
    x0, y0 = max(math.floor(min(xs)), 0), max(math.floor(min(ys)), 0)
    x1, y1 = min(math.ceil(max(xs)) + 1, width), min(math.ceil(max(ys)) + 1, height)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def crop_from_frame_matrix(landmarks_5: np.ndarray, crop_size: int, kind: Template = "arcface") -> np.ndarray:
    """The 2×3 ``crop_from_frame`` that puts five face points on the template."""
    return estimate_similarity(landmarks_5, template_points(crop_size, kind))


def warp_crop(frame: np.ndarray, crop_from_frame: np.ndarray, crop_size: int) -> np.ndarray:
    """CPU crop: (crop_size, crop_size, C) from an H×W×C frame, bilinear, zeros outside."""
    return cv2.warpAffine(frame, crop_from_frame, (crop_size, crop_size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
