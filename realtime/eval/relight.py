"""Synthetic light on a fitted 1080p frame, for benchmarks of hard light on real clips
(``bench/clip_quality.py --light``)."""

from __future__ import annotations

import numpy as np

LIGHTS = ("none", "side", "bright")
SIDE_STOPS = 2.0  # --light side: up to ±2 stops across the face; its cheeks ~1.8 stops apart
BRIGHT_STOPS = 1.3  # --light bright: the whole frame overexposed, highlights blown


def relight(rgb: np.ndarray, light: str) -> np.ndarray:
    """A synthetic light on a fitted 1080p frame, in linear light: ``side``, a lamp to the image's
    right (gain 2^(2·tanh((x − 960) / 300)), the face centred at x = 960); ``bright``, 1.3 stops
    more exposure everywhere; ``none`` leaves it. Values past white clip, as a camera's do."""
    if light == "none":
        return rgb
    linear = (rgb.astype(np.float32) / 255.0) ** 2.2
    if light == "side":
        x = np.arange(rgb.shape[1], dtype=np.float32)
        linear *= (2.0 ** (SIDE_STOPS * np.tanh((x - rgb.shape[1] / 2) / 300.0)))[None, :, None]
    else:
        linear *= 2.0**BRIGHT_STOPS
    return (np.clip(linear, 0.0, 1.0) ** (1 / 2.2) * 255.0 + 0.5).astype(np.uint8)
