"""``realtime track``'s output: per frame, every track's raw and smoothed landmarks, id, box,
fade and whether the detector ran; and a loader that turns the file back into arrays."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from realtime.bundle import FrameBundle
from realtime.errors import SinkError
from realtime.io.sources import SourceInfo
from realtime.pipeline.stage import SinkStage


def _points(array: np.ndarray | None) -> list[list[float]] | None:
    # 1/1000 px: a still head's detector noise can be ~0.01 px/frame, so coarser rounding would
    # dominate the jitter measured from this file.
    return None if array is None else np.round(array, 3).tolist()


def _extras(face: Any) -> dict[str, Any]:
    """Blendshapes and head pose, when the detector was asked for them (--blendshapes, --head-pose)."""
    detection = face.detection
    extras: dict[str, Any] = {}
    if detection is not None and detection.blendshapes:
        extras["blendshapes"] = {k: round(v, 4) for k, v in detection.blendshapes.items()}
    if detection is not None and detection.head_pose is not None:
        extras["head_pose"] = np.round(detection.head_pose, 5).tolist()
    return extras


class TrackLogSink(SinkStage):
    """Writes one JSON document; a frame per line inside it, so a long clip streams to disk."""

    name = "track-log"

    def __init__(self, path: Path, info: SourceInfo) -> None:
        self.path = path
        self.info = info
        self.partial = path.with_name(f".{path.name}.partial")
        self._handle: Any = None
        self._first = True

    def setup(self) -> None:
        if not self.path.parent.is_dir():
            raise SinkError(f"output folder {self.path.parent} does not exist", f"create it (mkdir -p {self.path.parent})")
        try:
            self._handle = self.partial.open("w", encoding="utf-8")
        except OSError as exc:
            raise SinkError(f"cannot create {self.path} ({exc.strerror or exc})", "choose a path you can write to") from None
        header = {"input": self.info.description, "width": self.info.width, "height": self.info.height, "fps": self.info.fps}
        self._handle.write(json.dumps(header)[:-1] + ', "frames": [\n')

    def write(self, bundle: FrameBundle) -> None:
        record = {
            "frame": bundle.frame_id,
            "t": round(bundle.media_time_s, 5),
            "detector_ran": bundle.detections is not None,
            "detections": None if bundle.detections is None else len(bundle.detections),
            "detections_t": bundle.detections_media_time_s if bundle.detections is not None else None,
            "tracks": [
                {
                    "id": face.track_id,
                    "box": [round(v, 2) for v in face.box],
                    "alpha": round(face.alpha, 3),
                    "landmarks": _points(face.landmarks),
                    "raw": _points(face.raw_landmarks),
                    **_extras(face),
                }
                for face in bundle.faces
            ],
        }
        try:
            self._handle.write(("" if self._first else ",\n") + json.dumps(record, separators=(",", ":")))
        except OSError as exc:
            raise SinkError(f"writing {self.path} failed ({exc.strerror or exc})", "check the disk") from None
        self._first = False

    def teardown(self, *, complete: bool) -> None:
        if self._handle is None:
            return
        self._handle.write("\n]}\n")
        self._handle.close()
        os.replace(self.partial, self.path if complete else self.path.with_name(f"{self.path.stem}.incomplete{self.path.suffix}"))


@dataclass(frozen=True)
class TrackLog:
    """Arrays from a track log: (T, N, 2) per track id, NaN where the track is absent."""

    times: np.ndarray
    detector_ran: np.ndarray
    detection_counts: np.ndarray  # -1 where the detector did not run
    smoothed: dict[int, np.ndarray]
    raw: dict[int, np.ndarray]


def load_track_log(path: Path) -> TrackLog:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    frames = data["frames"]
    count = len(frames)
    ids = sorted({track["id"] for frame in frames for track in frame["tracks"]})
    points = next((len(t["landmarks"]) for f in frames for t in f["tracks"]), 478)
    smoothed = {i: np.full((count, points, 2), np.nan) for i in ids}
    raw = {i: np.full((count, points, 2), np.nan) for i in ids}
    for index, frame in enumerate(frames):
        for track in frame["tracks"]:
            smoothed[track["id"]][index] = track["landmarks"]
            if track["raw"] is not None:
                raw[track["id"]][index] = track["raw"]
    return TrackLog(
        times=np.array([f["t"] for f in frames]),
        detector_ran=np.array([f["detector_ran"] for f in frames]),
        detection_counts=np.array([-1 if f["detections"] is None else f["detections"] for f in frames]),
        smoothed=smoothed,
        raw=raw,
    )
