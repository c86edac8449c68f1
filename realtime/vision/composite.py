"""Paste-back: a generated crop warped into the frame over the face's box only, then blended."""

from __future__ import annotations

import math

import cv2
import numpy as np


def box_of(frame_from_crop: np.ndarray, size: int, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The frame pixels a warped ``size``² crop can touch, clipped to the frame; None if none."""
    (a, b, c), (d, e, f) = frame_from_crop.tolist()  # Python floats: per face and frame, numpy's overhead dominated
    xs = (c, c + a * size, c + b * size, c + (a + b) * size)
    ys = (f, f + d * size, f + e * size, f + (d + e) * size)
    x0, y0 = max(math.floor(min(xs)), 0), max(math.floor(min(ys)), 0)
    x1, y1 = min(math.ceil(max(xs)) + 1, width), min(math.ceil(max(ys)) + 1, height)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def detail_band(region: np.ndarray, region_from_crop: np.ndarray, crop_size: int) -> np.ndarray:
    """What of ``region`` (H×W×C) a ``crop_size``² crop cannot carry: the region minus itself
    sampled into the crop and back, bilinear both ways (float32, signed, zero mean). Where the face
    spans more frame pixels than the crop has, this is the fine texture the generator never saw;
    where it spans fewer, it is next to nothing. Pasted crop + band gives the region back."""
    height, width = region.shape[:2]
    region_f = region.astype(np.float32)
    crop_from_region = cv2.invertAffineTransform(region_from_crop)
    through = cv2.warpAffine(region_f, crop_from_region, (crop_size, crop_size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    back = cv2.warpAffine(through, region_from_crop, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return region_f - back.reshape(region_f.shape)


def paste_crop(
    frame: np.ndarray, crop: np.ndarray, mask: np.ndarray, frame_from_crop: np.ndarray, *,
    opacity: float = 1.0, detail: float = 0.0, out: np.ndarray | None = None,
) -> np.ndarray:
    """Composite ``crop`` (S×S×3 uint8) into ``frame`` (H×W×3 uint8) through ``mask`` (S×S float).

    ``detail`` (0–1) adds that share of the frame's own ``detail_band`` to the pasted crop: the
    skin texture finer than the crop can hold, which a generated face lacks when it is upscaled.

    Only the bounding box of the warped crop is touched: a full-frame warp per face would cost
    ~8 MB of work at 1080p for a face of a few hundred pixels. Writes into ``out`` (which may be
    ``frame`` itself) or into a new copy; returns it."""
    height, width = frame.shape[:2]
    out = frame.copy() if out is None else out
    box = box_of(frame_from_crop, crop.shape[0], width, height)
    if box is None:
        return out
    x0, y0, x1, y1 = box
    box_from_crop = frame_from_crop.copy()
    box_from_crop[:, 2] -= (x0, y0)
    box_size = (x1 - x0, y1 - y0)
    warped = cv2.warpAffine(crop, box_from_crop, box_size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask, box_from_crop, box_size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    alpha = np.clip(alpha * opacity, 0.0, 1.0)
    region = out[y0:y1, x0:x1]
    if detail > 0.0:
        band = detail_band(region, box_from_crop, crop.shape[0])
        warped = np.clip(warped.astype(np.float32) + detail * band, 0.0, 255.0).round().astype(np.uint8)
    # OpenCV's blendLinear: weighted sum with per-pixel weights, in one optimised pass
    region[...] = cv2.blendLinear(warped, np.ascontiguousarray(region), alpha, 1.0 - alpha)
    return out
