"""TrackStage: tracked, smoothed and aligned faces; tracks end at scene cuts.

Reads ``frame``, ``detections``, ``detections_media_time_s``, ``media_time_s``. Writes ``faces``:
one ``Face`` per confirmed track, with smoothed (or predicted) landmarks, its box, a fade
``alpha``, its ``state`` and the ``crop_from_frame`` / ``frame_from_crop`` transforms of the
aligned crop; ``tentative_faces``: faces seen but not yet confirmed (never swapped; the face-safety
policy covers them); ``scene_cut`` when this frame starts a new shot. A frame with no face gets
empty lists and passes through unswapped.

At a cut every track ends and no id carries over; detections taken before the cut (the async
detector delivers late) are dropped, so a face from the last shot is never pasted into the new one.
"""

from __future__ import annotations

import numpy as np

from realtime.bundle import FrameBundle
from realtime.config import TrackConfig
from realtime.pipeline.stage import Stage
from realtime.vision.kalman import SmootherConfig
from realtime.vision.scene_cut import is_scene_cut, thumbnail
from realtime.vision.tracking import FaceTracker


class TrackStage(Stage):
    name = "track"

    def __init__(self, config: TrackConfig, smoother: SmootherConfig | None = None, *, cover_lost_s: float | None = None) -> None:
        self.config = config
        self.tracker = FaceTracker(config, smoother, cover_lost_s=cover_lost_s)
        self.frames_without_face = 0
        self.scene_cuts = 0
        self._thumbnail: np.ndarray | None = None
        self._cut_at_s = float("-inf")

    def process(self, bundle: FrameBundle) -> FrameBundle:
        if self.config.scene_cut > 0:
            current = thumbnail(bundle.frame)
            if is_scene_cut(self._thumbnail, current, self.config.scene_cut):
                self.tracker.end_all()
                self.scene_cuts += 1
                self._cut_at_s = bundle.media_time_s
                bundle.scene_cut = True
            self._thumbnail = current
        detections, t_detected = bundle.detections, bundle.detections_media_time_s
        if detections is not None and (t_detected if t_detected is not None else bundle.media_time_s) < self._cut_at_s:
            detections = None  # seen in the last shot
        bundle.faces = self.tracker.step(detections, t_detected, bundle.media_time_s)
        bundle.tentative_faces = self.tracker.tentative
        if not bundle.faces:
            self.frames_without_face += 1
        return bundle

    def describe(self) -> dict[str, object]:
        return {
            "smoothing": self.config.smoothing,
            "crop_size": self.config.crop_px,
            "template": self.config.template,
            "frames_without_face": self.frames_without_face,
            "tracks_started": self.tracker.tracks_started,
            "scene_cuts": self.scene_cuts,
            "tracks_ended_by_cuts": self.tracker.tracks_ended_by_cuts,
        }
