"""Is this frame the last one again? A webcam in low light hands the same buffer twice, and a
15 fps clip played at 30 repeats every frame. The detector then sees the same face, but the
landmark smoother, still catching up with the last real motion, moves it (0.5–1.4 px on such a
clip, against 0.03–0.07 px for the raw landmarks): the swapped face shimmers while the camera is
still. A repeated frame keeps the faces' landmarks as they were last shown.

A frame repeats when, inside the boxes of the faces on show, it differs from the frame those
faces were last placed on (the anchor, not merely the previous frame, so a face that creeps by a
hair a frame still moves) by less than ``REPEAT_GREY`` on average: far below any camera's sensor
noise, so a live, moving or merely noisy face is never held. A face is held only if the detector,
when it reported on this frame, agrees (its raw landmarks moved less than ``RAW_STILL_PX``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RAW_STILL_PX = 0.5  # a new detection that moved less than this (mean, px) agrees the face did not move
# mean |Δ| (grey levels) inside the face boxes. A compressed repeat reads 0.03–0.5, a camera's
# noise alone about 1 or more (|Δ| of two draws of σ = 1); a camera that denoises hard may read
# less on a still face, which is then held too: a still face should not move. Motion moves the
# box's mean by its gradient (several levels a pixel) times the shift: well under 0.1 px here.
REPEAT_GREY = 0.6
SAMPLE = 4  # every 4th pixel of every 4th row: enough to tell noise from none, 1/16 of the work


def sample(frame: np.ndarray) -> np.ndarray:
    """The green channel (most of the luma) at every ``SAMPLE``-th pixel, as int16."""
    return frame[::SAMPLE, ::SAMPLE, 1].astype(np.int16)


def repeats(anchor: np.ndarray | None, current: np.ndarray, boxes: Sequence[tuple[float, float, float, float]]) -> bool:
    """Whether ``current`` (a ``sample``) shows the faces in ``boxes`` (frame pixels: x0, y0, x1,
    y1) as ``anchor`` did. No anchor, no face, or a different frame size: not a repeat."""
    if anchor is None or anchor.shape != current.shape or not boxes:
        return False
    height, width = current.shape
    changed, pixels = 0, 0
    for x0, y0, x1, y1 in boxes:
        left, top = max(int(x0) // SAMPLE, 0), max(int(y0) // SAMPLE, 0)
        right, bottom = min(int(np.ceil(x1 / SAMPLE)), width), min(int(np.ceil(y1 / SAMPLE)), height)
        if right <= left or bottom <= top:
            continue
        changed += int(np.abs(current[top:bottom, left:right] - anchor[top:bottom, left:right]).sum())
        pixels += (right - left) * (bottom - top)
    return pixels > 0 and changed / pixels < REPEAT_GREY
