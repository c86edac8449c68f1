"""The panel's view of the output: a sink on a latest-wins queue that keeps a reference to the
newest finished frame and its faces. A slow browser costs preview frames, never pipeline frames:
JPEGs are encoded on the server's side, only for the frame a client asks for."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from realtime.bundle import FrameBundle
from realtime.live import PREVIEW_WIDTH, preview_copy
from realtime.pipeline.stage import SinkStage


@dataclass(frozen=True)
class TrackedFace:
    track_id: int
    box: tuple[float, float, float, float]
    landmarks: np.ndarray


@dataclass(frozen=True)
class PreviewFrame:
    index: int
    frame: np.ndarray  # RGB, the output as written
    faces: tuple[TrackedFace, ...]
    swap_version: int | None  # the live choices it was swapped under
    t_written_ns: int
    input_frame: np.ndarray | None  # the input, small, while the panel shows it


class PreviewSink(SinkStage):
    name = "panel-preview"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: PreviewFrame | None = None
        self._jpeg: tuple[int, int, bytes] | None = None  # (frame index, width, bytes)
        self.shown_version = -1
        self.shown: deque[tuple[int, int]] = deque(maxlen=64)  # (choices version, when its first frame was written)

    def write(self, bundle: FrameBundle) -> None:
        faces = tuple(TrackedFace(f.track_id, tuple(float(v) for v in f.box), f.landmarks) for f in bundle.faces)  # type: ignore[arg-type]
        with self._lock:
            self._latest = PreviewFrame(bundle.frame_id, bundle.frame, faces, bundle.swap_version, time.perf_counter_ns(), bundle.input_preview)
            if bundle.swap_version is not None and bundle.swap_version > self.shown_version:
                self.shown_version = bundle.swap_version
                self.shown.append((bundle.swap_version, self._latest.t_written_ns))

    def latest(self) -> PreviewFrame | None:
        with self._lock:
            return self._latest

    def jpeg(self, width: int = PREVIEW_WIDTH, quality: int = 75, *, input_side: bool = False) -> tuple[int, bytes] | None:
        """The newest frame (or its input) as a JPEG at most ``width`` wide (encoded once per
        frame, width and side)."""
        latest = self.latest()
        if latest is None or (input_side and latest.input_frame is None):
            return None
        key = -width if input_side else width
        cached = self._jpeg
        if cached is not None and cached[0] == latest.index and cached[1] == key:
            return latest.index, cached[2]
        frame = latest.input_frame if input_side and latest.input_frame is not None else latest.frame
        if frame.shape[1] > width:
            frame = preview_copy(frame, width)
        ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            return None
        self._jpeg = (latest.index, key, encoded.tobytes())
        return latest.index, self._jpeg[2]

    def face_jpeg(self, track_id: int, size: int = 160) -> bytes | None:
        """A thumbnail of one tracked face on the newest frame."""
        latest = self.latest()
        face = next((f for f in latest.faces if f.track_id == track_id), None) if latest else None
        if latest is None or face is None:
            return None
        height, width = latest.frame.shape[:2]
        x0, y0, x1, y1 = (int(v) for v in face.box)
        crop = latest.frame[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)]
        if crop.size == 0:
            return None
        ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(cv2.resize(crop, (size, size)), cv2.COLOR_RGB2BGR))
        return encoded.tobytes() if ok else None
