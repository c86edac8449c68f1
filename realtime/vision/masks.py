"""Masks in crop space: float32 in [0, 1], S×S, built from landmarks and warped with the crop.

Sizes are fractions of the inter-ocular distance, so the feather looks the same on a face that
fills the frame and on one across the room.
"""

from __future__ import annotations

import cv2
import numpy as np

from realtime.vision.landmarks import FACE_OVAL, INNER_LIPS, LEFT_EYE, RIGHT_EYE, inter_ocular_distance

__all__ = ["LEFT_EYE", "RIGHT_EYE", "face_mask", "mask_sizes"]  # the eye outlines live in landmarks; masks is where callers look


HOLE_MARGIN = 0.04  # of the eye distance: the seam of a kept mouth or eye falls on skin, not on the lip or lid


def mask_sizes(iod: float, erode: float, blur: float) -> tuple[int, int, int]:
    """(erosion, hole margin, feather radius) in crop pixels for an eye distance ``iod``: the mask's
    sizes are fractions of it, so the feather looks the same near and far. The torch twin
    (``masks_torch.mask_sizes``) uses these numbers; the Gaussian's sigma is half the radius."""
    iod = max(iod, 1.0)
    return int(round(erode * iod)), max(1, int(round(HOLE_MARGIN * iod))), int(round(blur * iod))


def _polygon(mask: np.ndarray, points: np.ndarray, value: int) -> None:
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], value)


def _kernel(radius_px: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius_px + 1, 2 * radius_px + 1))


def face_mask(
    landmarks_in_crop: np.ndarray,
    crop_size: int,
    *,
    erode: float = 0.05,
    blur: float = 0.12,
    keep_mouth: bool = False,
    keep_eyes: bool = False,
) -> np.ndarray:
    """The face-mesh oval, eroded and feathered, with optional holes where the original shows:
    the inner mouth (teeth, tongue, lip sync) and the eyes (gaze)."""
    mask: np.ndarray = np.zeros((crop_size, crop_size), np.uint8)
    _polygon(mask, landmarks_in_crop[list(FACE_OVAL)], 255)
    erode_px, margin_px, blur_px = mask_sizes(inter_ocular_distance(landmarks_in_crop), erode, blur)
    if erode_px > 0:
        mask = cv2.erode(mask, _kernel(erode_px))
    holes: np.ndarray = np.zeros_like(mask)
    if keep_mouth:
        _polygon(holes, landmarks_in_crop[list(INNER_LIPS)], 255)
    if keep_eyes:
        _polygon(holes, landmarks_in_crop[list(LEFT_EYE)], 255)
        _polygon(holes, landmarks_in_crop[list(RIGHT_EYE)], 255)
    if keep_mouth or keep_eyes:
        # a little margin so the seam falls on skin, not on the lip or lid line
        holes = cv2.dilate(holes, _kernel(margin_px))
        mask = cv2.subtract(mask, holes)
    if blur_px > 0:
        sigma = blur_px / 2.0
        mask = cv2.GaussianBlur(mask, (2 * blur_px + 1, 2 * blur_px + 1), sigma)
    return mask.astype(np.float32) / 255.0
