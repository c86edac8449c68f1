"""Colour matching: the generated face takes the target's lighting.

Reinhard-style transfer in CIELAB (perceptual: lightness and the two colour axes separate):
inside the mask, each channel's mean and standard deviation are moved from the generated crop's
to the target crop's. Statistics can be smoothed over time per track, so the colour follows slow
lighting changes but does not pump with every frame's noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

# Mean and std are global: statistics on a 4× subsampled crop are within well under a grey level
# of the full crop's, at a sixteenth of the cost. Only the transfer itself needs every pixel.
STATS_STEP = 4


@dataclass(frozen=True)
class ColourStats:
    mean: np.ndarray  # (3,) L, a, b
    std: np.ndarray  # (3,)

    def blend(self, newer: ColourStats, weight: float) -> ColourStats:
        return ColourStats(self.mean + weight * (newer.mean - self.mean), self.std + weight * (newer.std - self.std))


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB → float32 LAB (L 0–100, a/b about −128–127)."""
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def from_lab(lab: np.ndarray) -> np.ndarray:
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB) * 255.0 + 0.5, 0, 255).astype(np.uint8)


# The colour-matching rules, here once; the torch twin (colour_torch, blend/region) imports them.
MIN_STATS_PIXELS = 16  # fewer mask pixels than this: no statistics, the crop keeps its colour
STD_EPSILON = 1e-3  # added to every std, so a flat patch never divides by zero
MAX_GAIN = 2.0  # a std ratio is clamped to [1/MAX_GAIN, MAX_GAIN]: a flat crop is never blown into noise
# A face's mean lightness moves well under 1 L unit from frame to frame (noise, talking, slow light);
# a camera flash or an exposure step moves it by 15-40 at once. Smoothed statistics would lag such a
# jump for several frames (a dark oval on a bright face), so past this the smoother starts afresh.
EXPOSURE_JUMP_L = 8.0


def exposure_jumped(smoothed_l: float, new_l: float) -> bool:
    """Whether the face's mean lightness moved too far at once for smoothing to follow (a flash)."""
    return abs(new_l - smoothed_l) > EXPOSURE_JUMP_L


def smoothing_weight(dt_s: float, time_constant_s: float) -> float:
    """How far smoothed statistics move towards a new frame's after ``dt_s``: 1 − exp(−Δt/τ)
    (1: all the way, also when smoothing is off)."""
    if time_constant_s <= 0:
        return 1.0
    return 1.0 - math.exp(-max(dt_s, 0.0) / time_constant_s)


def masked_stats(lab: np.ndarray, mask: np.ndarray, threshold: float = 0.5) -> ColourStats | None:
    """Mean and std per LAB channel where ``mask`` > threshold; None if too few pixels."""
    inside = mask > threshold
    if inside.sum() < MIN_STATS_PIXELS:
        return None
    pixels = lab[inside]
    return ColourStats(pixels.mean(axis=0), pixels.std(axis=0) + STD_EPSILON)


def transfer(lab: np.ndarray, source: ColourStats, target: ColourStats, *, max_gain: float = MAX_GAIN) -> np.ndarray:
    """Move ``lab`` from ``source`` statistics to ``target`` statistics (gains clamped, so a flat
    generated patch cannot be blown up into noise)."""
    gain = np.clip(target.std / source.std, 1.0 / max_gain, max_gain)
    return (lab - source.mean) * gain + target.mean


class ColourSmoother:
    """Exponentially smoothed statistics per track id, with a time constant in seconds."""

    def __init__(self, time_constant_s: float) -> None:
        self.time_constant_s = time_constant_s
        self.state: dict[int, tuple[float, ColourStats]] = {}

    def update(self, track_id: int, t_s: float, stats: ColourStats) -> ColourStats:
        previous = self.state.get(track_id)
        if previous is None or self.time_constant_s <= 0 or exposure_jumped(float(previous[1].mean[0]), float(stats.mean[0])):
            smoothed = stats
        else:
            t_previous, old = previous
            smoothed = old.blend(stats, smoothing_weight(t_s - t_previous, self.time_constant_s))
        self.state[track_id] = (t_s, smoothed)
        return smoothed

    def forget(self, live_ids: set[int]) -> None:
        for track_id in [k for k in self.state if k not in live_ids]:
            del self.state[track_id]
