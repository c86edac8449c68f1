"""DetectStage: MediaPipe face landmarks on a downscaled copy of the frame.

Reads ``frame``, ``frame_id``, ``media_time_s``. Writes ``detections`` (a list, possibly empty,
when the landmarker produced a result for this step; None when it did not run or has nothing new)
and ``detections_media_time_s`` (the frame time the result belongs to).

The landmarker is asked for ``FACES_SEEN_PAST_MAX`` more faces than ``--max-faces``: the faces
over the limit are tracked too, so the face-safety policy can cover them (``--others``).

Synchronous mode runs the landmarker in the frame's path every ``detect_every`` frames.
Asynchronous mode runs it on a thread beside the pipeline: the stage hands it the newest frame
and picks up whatever result is ready, so no frame ever waits ~12 ms for the landmarker; the
track stage predicts the faces forward to each frame's time.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from pathlib import Path

import numpy as np

from realtime.bundle import Detection, FrameBundle, StageTiming
from realtime.config import FACES_SEEN_PAST_MAX, DetectConfig
from realtime.models.landmarker import FaceLandmarkerModel, LandmarkerOptions
from realtime.models.weights import resolve_face_landmarker
from realtime.photo import landmarker_options
from realtime.pipeline.stage import Stage
from realtime.pipeline.thread_names import name_os_thread
from realtime.vision.landmarks import inter_ocular_distance

log = logging.getLogger("realtime")


class _AsyncLandmarker(threading.Thread):
    """The landmarker on its own thread, with a one-slot inbox (newest frame wins) and outbox."""

    def __init__(self, model_path: Path, options: LandmarkerOptions) -> None:
        super().__init__(name="realtime-landmarker", daemon=True)
        self.model_path, self.options = model_path, options
        self._lock = threading.Condition()
        self._pending: tuple[np.ndarray, float] | None = None
        self._result: tuple[list[Detection], float, float] | None = None
        self._error: BaseException | None = None
        self._stopping = False
        self.ready = threading.Event()
        self.busy = False

    def run(self) -> None:
        name_os_thread("landmarker")  # before the model: MediaPipe's own threads take this name
        try:
            model = FaceLandmarkerModel(self.model_path, self.options)
        except BaseException as error:  # noqa: BLE001 - handed to setup()
            self._error = error
            self.ready.set()
            return
        self.ready.set()
        try:
            while True:
                with self._lock:
                    while self._pending is None and not self._stopping:
                        self._lock.wait(0.05)
                    if self._stopping:
                        return
                    assert self._pending is not None
                    frame, t_s = self._pending
                    self._pending = None
                    self.busy = True
                t0 = time.perf_counter()
                try:
                    detections = model.detect(frame, t_s)
                except Exception as error:  # noqa: BLE001 - reported on the next frame
                    with self._lock:
                        self._error, self.busy = error, False
                    continue
                with self._lock:
                    self._result = (detections, t_s, (time.perf_counter() - t0) * 1e3)
                    self.busy = False
        finally:
            model.close()

    def submit(self, frame: np.ndarray, t_s: float) -> None:
        with self._lock:
            self._pending = (frame, t_s)
            self._lock.notify()

    def take(self) -> tuple[list[Detection], float, float] | None:
        with self._lock:
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            result, self._result = self._result, None
            return result

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify()


class DetectStage(Stage):
    name = "detect"
    reads = ("frame", "frame_id", "media_time_s")
    writes = ("detections", "detections_media_time_s")

    def __init__(self, config: DetectConfig, *, asynchronous: bool, model_path: Path | None = None) -> None:
        self.config = config
        self.asynchronous = asynchronous
        self.model_path = model_path
        # more faces than are swapped: a face over --max-faces is seen, so it can be covered
        self.options = dataclasses.replace(landmarker_options(config), max_faces=config.max_faces + FACES_SEEN_PAST_MAX)
        self._model: FaceLandmarkerModel | None = None
        self._worker: _AsyncLandmarker | None = None
        self.small_faces_ignored = 0

    def setup(self) -> None:
        path = self.model_path or resolve_face_landmarker(Path(self.config.landmarker_model) if self.config.landmarker_model else None)
        if self.asynchronous:
            self._worker = _AsyncLandmarker(path, self.options)
            self._worker.start()
            self._worker.ready.wait()
            self._worker.take()  # raises a model-loading error here, before the first frame
        else:
            self._model = FaceLandmarkerModel(path, self.options)

    def process(self, bundle: FrameBundle) -> FrameBundle:
        due = bundle.frame_id % self.config.detect_every == 0
        if self._worker is not None:
            if due:
                self._worker.submit(bundle.frame, bundle.media_time_s)
            result = self._worker.take()
            if result is not None:
                detections, t_s, detect_ms = result
                bundle.detections = self._keep_large(detections)
                bundle.detections_media_time_s = t_s
                # Queue wait = how old the result is; work = the landmarker's own time.
                bundle.timings["landmarker"] = StageTiming((bundle.media_time_s - t_s) * 1e3, detect_ms)
            return bundle
        if due:
            assert self._model is not None, "setup() loads the model"
            bundle.detections = self._keep_large(self._model.detect(bundle.frame, bundle.media_time_s))
            bundle.detections_media_time_s = bundle.media_time_s
        return bundle

    def _keep_large(self, detections: list[Detection]) -> list[Detection]:
        kept = [d for d in detections if inter_ocular_distance(d.landmarks) >= self.config.min_face_px]
        self.small_faces_ignored += len(detections) - len(kept)
        return kept

    def describe(self) -> dict[str, object]:
        return {
            "mode": "async" if self.asynchronous else "sync",
            "detect_every": self.config.detect_every,
            "max_side": self.config.detect_max_side,
            "small_faces_ignored": self.small_faces_ignored,
        }

    def teardown(self) -> None:
        if self._worker is not None:
            self._worker.stop()
            self._worker.join(timeout=1.0)
        if self._model is not None:
            self._model.close()
