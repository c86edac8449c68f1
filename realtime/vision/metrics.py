"""Tracking quality from landmark sequences: jitter on still stretches, lag on moving ones.

Sequences are (T, N, 2) arrays (NaN where a frame has no face). Jitter and lag are measured on
the rigid points (eye corners, nose bridge, face sides): on a still head those must not move,
whatever the mouth does, and they are what moves the crop.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter1d

from realtime.vision.landmarks import RIGID_POINTS, five_points


def inter_ocular_series(landmarks: np.ndarray) -> np.ndarray:
    """(T,) inter-ocular distance per frame."""
    return np.array([np.linalg.norm(np.diff(five_points(frame)[:2], axis=0)) if np.isfinite(frame).all() else np.nan for frame in landmarks])


def head_speed(raw: np.ndarray, window: int = 9) -> np.ndarray:
    """(T,) rigid-point speed in face units per frame, from a centred moving average of the raw
    track: averaging across time removes detector noise, so what remains is real head motion."""
    rigid = raw[:, list(RIGID_POINTS)]
    smooth = uniform_filter1d(rigid, size=window, axis=0, mode="nearest")
    step = np.linalg.norm(np.diff(smooth, axis=0), axis=-1).mean(axis=1)
    iod = inter_ocular_series(raw)[1:]
    return np.concatenate([[np.nan], step / iod])


def still_mask(raw: np.ndarray, threshold: float = 0.004, min_run: int = 10) -> np.ndarray:
    """(T,) True on frames inside still stretches (speed under ``threshold`` for ≥ ``min_run`` frames)."""
    speed = head_speed(raw)
    still = np.nan_to_num(speed, nan=np.inf) < threshold
    mask = np.zeros_like(still)
    start = None
    for index, flag in enumerate([*still, False]):
        if flag and start is None:
            start = index
        elif not flag and start is not None:
            if index - start >= min_run:
                mask[start:index] = True
            start = None
    return mask


def moving_mask(raw: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    return np.nan_to_num(head_speed(raw), nan=0.0) > threshold


def jitter(track: np.ndarray, reference: np.ndarray, mask: np.ndarray, window: int = 9) -> float:
    """Mean frame-to-frame motion of the rigid points on ``mask`` frames, in face units.

    Real clips are never perfectly still, so the slow drift of the stretch (a centred ``window``
    average of the raw ``reference`` track, the same for every track measured) is subtracted
    first; on a truly still head this is exactly the frame-to-frame motion. ``reference`` also
    gives the inter-ocular distance (pass the raw track when measuring the raw track itself)."""
    rigid = track[:, list(RIGID_POINTS)]
    trend = uniform_filter1d(reference[:, list(RIGID_POINTS)], size=window, axis=0, mode="nearest")
    step = np.linalg.norm(np.diff(rigid - trend, axis=0), axis=-1).mean(axis=1) / inter_ocular_series(reference)[1:]
    both = mask[1:] & mask[:-1] & np.isfinite(step)
    return float(step[both].mean()) if both.any() else float("nan")


def lag_frames(track: np.ndarray, reference: np.ndarray, mask: np.ndarray, max_lag: int = 4) -> float:
    """How many frames ``track`` trails ``reference`` on ``mask`` frames (fractional, parabolic fit)."""
    rigid_t = track[:, list(RIGID_POINTS)]
    rigid_r = reference[:, list(RIGID_POINTS)]
    iod = inter_ocular_series(reference)
    lags = np.arange(-max_lag, max_lag + 1)
    errors = []
    for lag in lags:
        index = np.arange(max_lag, len(track) - max_lag)
        index = index[mask[index]]
        diff = np.linalg.norm(rigid_t[index] - rigid_r[index - lag], axis=-1).mean(axis=1) / iod[index]
        errors.append(np.nanmean(diff**2) if len(index) else np.nan)
    errors_arr = np.array(errors)
    if not np.isfinite(errors_arr).any():
        return float("nan")
    best = int(np.nanargmin(errors_arr))
    if 0 < best < len(lags) - 1:
        left, centre, right = errors_arr[best - 1 : best + 2]
        curvature = left - 2 * centre + right
        offset = 0.5 * (left - right) / curvature if curvature > 0 else 0.0
        return float(lags[best] + offset)
    return float(lags[best])


def detection_rate(counts: np.ndarray) -> float:
    """Fraction of frames on which at least one face was detected."""
    return float((np.asarray(counts) > 0).mean()) if len(counts) else float("nan")
