"""TrackStage: tracked, smoothed and aligned faces.

Reads ``detections``, ``detections_media_time_s``, ``media_time_s``. Writes ``faces``: one
``Face`` per live track, with smoothed (or predicted) landmarks, its box, a fade ``alpha`` and
the ``crop_from_frame`` / ``frame_from_crop`` transforms of the aligned crop. A frame with no face
gets an empty list and passes through unswapped.
"""

from __future__ import annotations

from realtime.bundle import FrameBundle
from realtime.config import TrackConfig
from realtime.pipeline.stage import Stage
from realtime.vision.kalman import SmootherConfig
from realtime.vision.tracking import FaceTracker


class TrackStage(Stage):
    name = "track"

    def __init__(self, config: TrackConfig, smoother: SmootherConfig | None = None) -> None:
        self.config = config
        self.tracker = FaceTracker(config, smoother)
        self.frames_without_face = 0

    def process(self, bundle: FrameBundle) -> FrameBundle:
        bundle.faces = self.tracker.step(bundle.detections, bundle.detections_media_time_s, bundle.media_time_s)
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
        }
