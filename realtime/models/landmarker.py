"""MediaPipe FaceLandmarker (Tasks API, video mode) behind a small typed interface."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from realtime.bundle import Detection
from realtime.errors import ModelError

log = logging.getLogger("realtime")


@dataclass(frozen=True)
class LandmarkerOptions:
    max_faces: int = 1
    min_detection_confidence: float = 0.5
    min_presence_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    blendshapes: bool = False
    head_pose: bool = False
    max_side: int = 640  # frames larger than this are downscaled for the landmarker, then mapped back


def downscale_for_detection(frame: np.ndarray, max_side: int) -> np.ndarray:
    """A copy no larger than ``max_side`` on its long side (area filter); the frame itself if small."""
    height, width = frame.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1.0:
        return frame
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


_STDERR_LOCK = threading.Lock()
_quiet_depth = 0
_saved_stderr_fd: int | None = None
_redirected_handlers: list[tuple[logging.StreamHandler[Any], Any]] = []


def _silence_fd2() -> None:
    """First entrant: fd 2 to /dev/null; our log handlers that wrote to fd 2 write to a copy of it."""
    global _saved_stderr_fd
    sys.stderr.flush()
    _saved_stderr_fd = os.dup(2)
    stream = os.fdopen(os.dup(_saved_stderr_fd), "w", buffering=1, encoding="utf-8", errors="backslashreplace")
    for logger in (logging.getLogger(), log):
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and _writes_to_fd2(handler.stream):
                _redirected_handlers.append((handler, handler.setStream(stream)))
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def _restore_fd2() -> None:
    """Last one out: fd 2 and the handlers back as they were."""
    global _saved_stderr_fd
    assert _saved_stderr_fd is not None
    os.dup2(_saved_stderr_fd, 2)
    os.close(_saved_stderr_fd)
    _saved_stderr_fd = None
    streams = {id(handler.stream): handler.stream for handler, _ in _redirected_handlers}
    for handler, previous in _redirected_handlers:
        handler.setStream(previous)
    _redirected_handlers.clear()
    for stream in streams.values():
        stream.close()


def _writes_to_fd2(stream: Any) -> bool:
    try:
        return bool(stream.fileno() == 2)
    except (AttributeError, OSError, ValueError):  # a test's capture, a StringIO
        return False


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence C++ start-up chatter (glog/TFLite) written straight to fd 2, unless debugging.

    Several stages build graphs at once on their own threads: fd 2 is shared by the process, so
    the first to enter silences it and the last to leave restores it (without the count, one
    thread restored the other's /dev/null and every later message of the run was lost). While it
    is silenced our own log lines still reach the terminal through a copy of the real fd 2."""
    global _quiet_depth
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    with _STDERR_LOCK:
        if _quiet_depth == 0:
            _silence_fd2()
        _quiet_depth += 1
    try:
        yield
    finally:
        with _STDERR_LOCK:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                _restore_fd2()


class FaceLandmarkerModel:
    """One mediapipe graph. Not thread-safe: create it on the thread that uses it."""

    def __init__(self, model_path: Path, options: LandmarkerOptions) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe's C++ start-up chatter
        try:
            with quiet_native_stderr():
                import mediapipe as mp
                from mediapipe.tasks.python import BaseOptions, vision
        except ImportError as exc:
            raise ModelError(f"mediapipe cannot be imported ({exc})", "pip install 'mediapipe>=1.2'") from None
        self._mp = mp
        self.options = options
        task_options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(model_path)),
            running_mode=vision.RunningMode.VIDEO,
            num_faces=options.max_faces,
            min_face_detection_confidence=options.min_detection_confidence,
            min_face_presence_confidence=options.min_presence_confidence,
            min_tracking_confidence=options.min_tracking_confidence,
            output_face_blendshapes=options.blendshapes,
            output_facial_transformation_matrixes=options.head_pose,
        )
        try:
            with quiet_native_stderr():
                self._landmarker = vision.FaceLandmarker.create_from_options(task_options)
                # The first call builds the TFLite delegates (and logs about it): do it now.
                blank = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.zeros((64, 64, 3), np.uint8))
                self._landmarker.detect_for_video(blank, 0)
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"mediapipe cannot load {model_path} ({str(exc).splitlines()[0]})", "replace it with the official face_landmarker.task") from None
        self._last_ms = 0

    def detect(self, frame: np.ndarray, media_time_s: float) -> list[Detection]:
        """Faces in an H×W×3 uint8 RGB frame; landmarks in that frame's pixels."""
        height, width = frame.shape[:2]
        small = downscale_for_detection(frame, self.options.max_side)
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(small))
        # Video mode needs strictly increasing timestamps, also across --loop passes.
        t_ms = max(int(media_time_s * 1000), self._last_ms + 1)
        self._last_ms = t_ms
        result = self._landmarker.detect_for_video(image, t_ms)
        detections = []
        scale = np.array([width, height], np.float64)  # normalised coordinates map straight back
        for index, points in enumerate(result.face_landmarks):
            landmarks = np.array([(p.x, p.y) for p in points], np.float64) * scale
            blendshapes = None
            if self.options.blendshapes and result.face_blendshapes:
                blendshapes = {c.category_name: float(c.score) for c in result.face_blendshapes[index]}
            pose = None
            if self.options.head_pose and result.facial_transformation_matrixes:
                pose = np.asarray(result.facial_transformation_matrixes[index], np.float64)
            detections.append(Detection(landmarks, blendshapes, pose))
        return detections

    def close(self) -> None:
        self._landmarker.close()
