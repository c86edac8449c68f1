"""Masks in crop space: float in [0, 1], H×W, built from landmarks and warped with the crop."""

from __future__ import annotations

import cv2
import numpy as np

from realtime.vision.landmarks import FACE_OVAL, inter_ocular_distance


def face_oval_mask(landmarks_in_crop: np.ndarray, crop_size: int, *, erode: float = 0.05, blur: float = 0.12) -> np.ndarray:
    """The face-mesh oval, eroded and feathered by fractions of the inter-ocular distance, so the
    feather scales with the face instead of being a fixed number of pixels."""
    mask = np.zeros((crop_size, crop_size), np.uint8)
    cv2.fillPoly(mask, [np.round(landmarks_in_crop[list(FACE_OVAL)]).astype(np.int32)], 255)
    iod = max(inter_ocular_distance(landmarks_in_crop), 1.0)
    erode_px = int(round(erode * iod))
    if erode_px > 0:
        mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * erode_px + 1, 2 * erode_px + 1)))
    blur_px = int(round(blur * iod)) | 1
    if blur_px > 1:
        mask = cv2.GaussianBlur(mask, (blur_px * 2 + 1, blur_px * 2 + 1), blur_px / 2)
    return mask.astype(np.float32) / 255.0
