"""The conditions a face is seen in, as numbers, so that a benchmark's trials can be split by them:
how far the head is turned, how unevenly and how harshly it is lit, and the skin's tone (the
individual typology angle, ITA, of dermatology). Each reads one RGB image and that face's landmarks.

Light and tone are read on two cheek patches of the face aligned to the ArcFace template, where
skin shows in most faces: no eyes, brows, lips or nostrils, and rarely hair (a beard may reach the
lower patch edge; the median keeps it from deciding)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from realtime.vision.align import crop_from_frame_matrix, template_points, warp_crop
from realtime.vision.landmarks import five_points

PATCH_CROP = 112  # the aligned crop the cheeks are cut from
# Bright-to-dark side ratios are read in linear light: sRGB values are gamma-encoded.
SRGB_GAMMA = 2.2
CLIPPED = 250  # a channel at or above this is blown out (the camera lost the detail)
# ITA bands of Chardon et al. (1991), lightest first, with their lower bounds in degrees.
TONE_BANDS = (("very light", 55.0), ("light", 41.0), ("intermediate", 28.0), ("tan", 10.0), ("brown", -30.0), ("dark", -math.inf))


def cheek_patches(image: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) uint8 pixels of the cheek on the image's left and of the one on its right: boxes below
    each eye, between a third and four fifths of the way down to the mouth, beside the nose."""
    crop = warp_crop(image, crop_from_frame_matrix(five_points(landmarks), PATCH_CROP, "arcface"), PATCH_CROP)
    template = template_points(PATCH_CROP, "arcface")
    eye_y, mouth_y = template[:2, 1].mean(), template[3:, 1].mean()
    top, bottom = int(eye_y + 0.3 * (mouth_y - eye_y)), int(eye_y + 0.8 * (mouth_y - eye_y))
    half = int(0.25 * (template[1, 0] - template[0, 0]))  # a quarter of the eye distance either side
    patches = []
    for eye_x in template[:2, 0]:
        x = int(round(eye_x))
        patches.append(crop[top:bottom, x - half:x + half].reshape(-1, 3))
    return patches[0], patches[1]


def _linear_luminance(pixels: np.ndarray) -> np.ndarray:
    linear = (pixels.astype(np.float64) / 255.0) ** SRGB_GAMMA
    return linear @ np.array([0.2126, 0.7152, 0.0722])


def side_light_stops(image: np.ndarray, landmarks: np.ndarray) -> float:
    """log2 of the left cheek's median luminance over the right's, in linear light: 0 for even
    light, ±1 when one side gets twice the light (a lamp or window to one side)."""
    left, right = (float(np.median(_linear_luminance(patch))) for patch in cheek_patches(image, landmarks))
    return math.log2(max(left, 1e-4) / max(right, 1e-4))


def clipped_share(image: np.ndarray, landmarks: np.ndarray) -> float:
    """The share of cheek pixels with a channel blown out (≥ 250): harsh light or overexposure."""
    pixels = np.concatenate(cheek_patches(image, landmarks))
    return float((pixels >= CLIPPED).any(axis=1).mean())


def individual_typology_angle(image: np.ndarray, landmarks: np.ndarray) -> float:
    """ITA = atan((L* − 50) / b*) in degrees on the cheeks' median CIELAB colour: high for light
    skin, low or negative for dark. It reads the photo, so the camera's white balance and the light
    move it as much as a few bands; it groups faces, it does not describe a person."""
    pixels = np.concatenate(cheek_patches(image, landmarks)).reshape(1, -1, 3).astype(np.float32) / 255.0
    lab = cv2.cvtColor(pixels, cv2.COLOR_RGB2Lab).reshape(-1, 3)
    lightness, yellow = float(np.median(lab[:, 0])), float(np.median(lab[:, 2]))
    return math.degrees(math.atan2(lightness - 50.0, yellow))


def tone_band(ita: float) -> str:
    """The ITA band's name: very light, light, intermediate, tan, brown or dark."""
    return next(name for name, lower in TONE_BANDS if ita > lower)
