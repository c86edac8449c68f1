"""Real footage for the face-safety rules, and a reading of what the viewer saw on each face.

From any two talking-head clips: hard cuts between the two people (``cut_montage``), both side by
side (``side_by_side``: more faces than ``--max-faces`` 1) and a camera flash (``flash_burst``).
Where each face really is comes from the clips on their own (a landmarker that never sees a cut),
so the reading does not trust the detector it judges. ``read_face`` says whether the output shows
the input's own face there: 'real' (its pixels came through), 'partly real' (its fine detail is
still there: a fade, a thin cover), 'covered' or 'swapped'.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from realtime.bundle import Detection, FrameBundle
from realtime.vision.landmarks import box_from_landmarks

Verdict = Literal["real", "partly real", "covered", "swapped"]
Box = tuple[float, float, float, float]
UNCHANGED_LEVELS = 2  # a pixel within this many grey levels of the input came through
REAL_SHARE = 0.5  # more than this share of the face's pixels unchanged: the real face is on air
DETAIL_CORRELATION = 0.8  # the face's fine detail correlates this well with the input's: partly real


def read_clip(path: Path, frames: int, height: int | None = None) -> tuple[list[np.ndarray], float]:
    """The first ``frames`` RGB frames of ``path`` (resized to ``height`` when given) and its rate."""
    import av

    out: list[np.ndarray] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 25)
        for frame in container.decode(stream):
            image: np.ndarray = frame.to_ndarray(format="rgb24")
            if height is not None and image.shape[0] != height:
                image = cv2.resize(image, (round(image.shape[1] * height / image.shape[0]) // 2 * 2, height), interpolation=cv2.INTER_AREA)
            out.append(image)
            if len(out) == frames:
                break
    return out, fps


def cut_montage(a: Sequence[np.ndarray], b: Sequence[np.ndarray], shot: int) -> tuple[list[np.ndarray], list[int], list[int]]:
    """Shots of ``shot`` frames taken in turn from ``a`` and ``b`` (same size), each clip going on
    where it stopped. Returns the frames, which clip each came from (0, 1) and its frame in it."""
    frames: list[np.ndarray] = []
    which: list[int] = []
    index: list[int] = []
    position = [0, 0]
    for k in range(min(len(a), len(b)) * 2 // shot):
        clip = k % 2
        source = a if clip == 0 else b
        for _ in range(shot):
            if position[clip] >= len(source):
                return frames, which, index
            frames.append(source[position[clip]])
            which.append(clip)
            index.append(position[clip])
            position[clip] += 1
    return frames, which, index


def side_by_side(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each frame of ``a`` with ``b``'s beside it on the right (same height)."""
    return [np.ascontiguousarray(np.concatenate([x, y], axis=1)) for x, y in zip(a, b, strict=False)]


def flash_burst(frames: Sequence[np.ndarray], start: int, length: int, gain: float = 1.8, lift: float = 40.0) -> list[np.ndarray]:
    """``frames`` with ``length`` frames from ``start`` brightened as a camera flash does."""
    out = [np.asarray(f) for f in frames]
    for i in range(start, min(start + length, len(out))):
        out[i] = np.clip(out[i].astype(np.float32) * gain + lift, 0, 255).astype(np.uint8)
    return out


def clip_faces(frames: Sequence[np.ndarray], model_path: Path, max_faces: int = 1) -> list[list[np.ndarray]]:
    """Each frame's face landmarks, from one uninterrupted clip (the truth the reading trusts)."""
    from realtime.models.landmarker import FaceLandmarkerModel, LandmarkerOptions

    model = FaceLandmarkerModel(model_path, LandmarkerOptions(max_faces=max_faces))
    try:
        return [[d.landmarks for d in model.detect(frame, i / 30)] for i, frame in enumerate(frames)]
    finally:
        model.close()


@dataclass(frozen=True)
class FaceReading:
    unchanged_share: float  # of the face box's pixels, the share that came through as they were
    detail_correlation: float  # of the fine detail (a high-pass) in the box, output against input
    verdict: Verdict


def _inner_box(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """The middle of the face (eyes, nose, mouth): where a real face shows even under a loose mask."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    return (max(0, int(x0 + 0.2 * w)), max(0, int(y0 + 0.2 * h)), min(width, int(x1 - 0.2 * w)), min(height, int(y1 - 0.1 * h)))


def read_face(before: np.ndarray, after: np.ndarray, box: Box, *, swapped: bool) -> FaceReading:
    """What the viewer saw of the face at ``box``: ``before`` is the input frame, ``after`` the
    output; ``swapped`` whether the pipeline says it swapped that face (to tell a swap from a cover)."""
    x0, y0, x1, y1 = _inner_box(box, before.shape[1], before.shape[0])
    if x1 - x0 < 4 or y1 - y0 < 4:
        return FaceReading(0.0, 0.0, "covered")
    a = before[y0:y1, x0:x1].astype(np.float32)
    b = after[y0:y1, x0:x1].astype(np.float32)
    unchanged = float(np.mean(np.abs(a - b).max(axis=-1) <= UNCHANGED_LEVELS))
    high_a = (a - cv2.GaussianBlur(a, (0, 0), 2.0)).ravel()
    high_b = (b - cv2.GaussianBlur(b, (0, 0), 2.0)).ravel()
    spread = float(np.std(high_a) * np.std(high_b))
    correlation = float(np.mean((high_a - high_a.mean()) * (high_b - high_b.mean())) / spread) if spread > 1e-6 else 0.0
    verdict: Verdict
    if unchanged > REAL_SHARE:
        verdict = "real"
    elif correlation > DETAIL_CORRELATION and not swapped:
        verdict = "partly real"
    else:
        verdict = "swapped" if swapped else "covered"
    return FaceReading(unchanged, correlation, verdict)


@dataclass
class FrameResult:
    index: int
    output: np.ndarray
    scene_cut: bool
    blind: bool
    swapped_boxes: list[Box]


Stages = Callable[[FrameBundle], FrameBundle]


def run_frames(frames: Sequence[np.ndarray], fps: float, detect: Callable[[np.ndarray, float], list[Detection]], stages: Stages, *, detect_lag: int = 1) -> list[FrameResult]:
    """Frames through ``stages`` (track, swap, blend) with ``detect``'s results delivered
    ``detect_lag`` frames late, as the asynchronous landmarker delivers them (0: in the frame's path)."""
    pending: list[tuple[list[Detection], float]] = []
    results = []
    for i, frame in enumerate(frames):
        t = i / fps
        pending.append((detect(frame, t), t))
        bundle = FrameBundle(i, 0, frame.copy(), t)
        if len(pending) > detect_lag:
            bundle.detections, bundle.detections_media_time_s = pending.pop(0)
        bundle = stages(bundle)
        swapped = [face.box for face in bundle.faces if face.blended]
        results.append(FrameResult(i, bundle.frame, bundle.scene_cut, getattr(bundle, "blind", False), swapped))  # older records have no blind
    return results


def face_grid(rows: Sequence[tuple[str, np.ndarray, np.ndarray, Box]], path: Path, height: int = 192, per_row: int = 3) -> None:
    """One tile per (label, input, output, box), ``per_row`` tiles a row: the face at full
    resolution, input beside output."""
    tiles = []
    for label, before, after, box in rows:
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        pad = int(0.25 * max(x1 - x0, y1 - y0))
        x0, y0 = max(0, x0 - pad), max(0, y0 - pad)
        x1, y1 = min(before.shape[1], x1 + pad), min(before.shape[0], y1 + pad)
        pair = [cv2.resize(img[y0:y1, x0:x1], (round((x1 - x0) * height / max(1, y1 - y0)), height), interpolation=cv2.INTER_NEAREST) for img in (before, after)]
        row = np.concatenate([pair[0], np.full((height, 6, 3), 255, np.uint8), pair[1]], axis=1)
        strip = np.full((28, row.shape[1], 3), 255, np.uint8)
        cv2.putText(strip, label, (4, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(np.concatenate([strip, row], axis=0))
    width = max(t.shape[1] for t in tiles)
    tiles = [np.pad(t, ((0, 4), (0, width - t.shape[1] + 8), (0, 0)), constant_values=255) for t in tiles]
    tiles += [np.full_like(tiles[0], 255)] * (-len(tiles) % per_row)  # the last row filled out
    canvas = np.concatenate([np.concatenate(tiles[i : i + per_row], axis=1) for i in range(0, len(tiles), per_row)], axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))


def faces_of(landmarks: Sequence[np.ndarray]) -> list[Box]:
    return [box_from_landmarks(points) for points in landmarks]
