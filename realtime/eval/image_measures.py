"""What a viewer sees in a face, as numbers: the face's region from its landmarks, its sharpness
(the variance of the Laplacian inside it) and how much of its top spatial frequencies an
upsampling lattice holds. One definition each, for every benchmark that compares a swap with its
input."""

from __future__ import annotations

import cv2
import numpy as np


def face_region(shape: tuple[int, ...], landmarks: np.ndarray, shrink: float = 0.08) -> np.ndarray:
    """The landmarks' convex hull, shrunk by ``shrink`` of the face's width (the blend's seam out)."""
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(landmarks.astype(np.int32)), 1)
    size = max(3, int(shrink * np.ptp(landmarks[:, 0])))
    return cv2.erode(mask, np.ones((size, size), np.uint8)).astype(bool)


def sharpness(image: np.ndarray, mask: np.ndarray) -> float:
    """The variance of the Laplacian of the grey image inside ``mask``."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(cv2.Laplacian(grey, cv2.CV_32F)[mask].var())


def power_spectrum(crop: np.ndarray) -> np.ndarray:
    """The grey image's windowed power spectrum, zero frequency at the centre."""
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
    grey -= grey.mean()
    window = np.outer(np.hanning(grey.shape[0]), np.hanning(grey.shape[1]))
    return np.abs(np.fft.fftshift(np.fft.fft2(grey * window))) ** 2


def mean_log_spectrum(crops: np.ndarray) -> np.ndarray:
    """log10 of the mean power spectrum of same-sized crops: an upsampling lattice shows as bright
    points or lines at fixed frequencies, which single images hide in their noise."""
    return np.log10(np.mean([power_spectrum(crop) for crop in crops], axis=0) + 1e-6)


def lattice_share(crop: np.ndarray) -> float:
    """Energy at the highest frequencies along either axis (|f| ≥ 0.45 cycles/px), as a share of
    the band above 0.25: a regular lattice from upsampling raises it; natural images keep it low."""
    power = power_spectrum(crop)
    fy, fx = np.meshgrid(np.fft.fftshift(np.fft.fftfreq(crop.shape[0])), np.fft.fftshift(np.fft.fftfreq(crop.shape[1])), indexing="ij")
    radius = np.maximum(np.abs(fx), np.abs(fy))
    return float(power[radius >= 0.45].sum() / max(power[radius >= 0.25].sum(), 1e-9))
