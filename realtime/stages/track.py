"""TrackStage: tracked, smoothed and aligned faces; tracks end at scene cuts.

Reads ``frame``, ``detections``, ``detections_media_time_s``, ``media_time_s``. Writes ``faces``:
one ``Face`` per confirmed track, with smoothed (or predicted) landmarks, its box, a fade
``alpha``, its ``state`` and the ``crop_from_frame`` / ``frame_from_crop`` transforms of the
aligned crop; ``tentative_faces``: faces seen but not yet confirmed (never swapped; the face-safety
policy covers them); ``scene_cut`` when this frame starts a new shot. A frame with no face gets
empty lists and passes through unswapped.

At a cut every track ends and no id carries over; detections taken before the cut (the async
detector delivers late) are dropped, so a face from the last shot is never pasted into the new one.
Under a covering policy the frame is ``blind`` from the cut until the detector has reported on a
frame of the new shot: nobody knows yet where the new shot's faces are, so the blend covers the
whole picture rather than show them (one or two frames with the async detector, none in sync).
The first frames of a run, before the detector's first report, are blind for the same reason.

The tracker (``FaceTracker``) keeps stable ids across frames, births and deaths with hysteresis,
fades in and out.

A detection continues the track whose predicted box it overlaps most (Hungarian assignment on
1 − IoU, scipy). A new face must be seen ``birth_hits`` times in a row before it counts, so a
single false detection never flashes a swap; a lost face is predicted for ``coast_s``, then fades
out over ``fade_s`` and ends, so a swap never pops off when the detector misses a frame or two.

Under a covering face-safety policy (``cover_lost_s`` set) nothing fades to the real face: a
confirmed face keeps full opacity while it is seen (or coasting), then turns 'lost' and stays
listed, unswapped, for ``cover_lost_s`` so the policy can hold or cover it. Tentative faces are
listed too (``tentative``), so the policy can cover a face before its first swap.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from realtime.bundle import Detection, Face, FaceState, FrameBundle
from realtime.config import TrackConfig
from realtime.pipeline.stage import Stage
from realtime.vision.align import crop_from_frame_matrix, invert_affine
from realtime.vision.kalman import LandmarkSmoother, SmootherConfig
from realtime.vision.landmarks import box_from_landmarks, box_iou, five_points
from realtime.vision.repeat import RAW_STILL_PX, repeats, sample
from realtime.vision.scene_cut import is_scene_cut, thumbnail


@dataclass
class Track:
    track_id: int
    smoother: LandmarkSmoother | None  # None when smoothing is off
    last_landmarks: np.ndarray
    t_first_s: float
    t_seen_s: float
    hits: int = 1
    missed_since_s: float | None = None  # when the detector first looked and did not find it
    confirmed_at_s: float | None = None
    last_detection: Detection | None = None
    raw_this_step: np.ndarray | None = field(default=None, repr=False)

    def landmarks_at(self, t_s: float, horizon_s: float) -> np.ndarray:
        """Smoothed landmarks at ``t_s``, predicted between detections; once the detector has
        missed the face, extrapolated at most ``horizon_s`` further (then held, not flung away)."""
        if self.smoother is None:
            return self.last_landmarks
        if t_s <= self.smoother.t_s:
            return self.smoother.smoothed
        if self.missed_since_s is not None:
            t_s = min(t_s, self.missed_since_s + horizon_s)
        return self.smoother.predict(t_s)


class FaceTracker:
    """Turns per-frame detections (or their absence) into tracked, smoothed, aligned faces."""

    def __init__(self, config: TrackConfig, smoother: SmootherConfig | None = None, *, cover_lost_s: float | None = None) -> None:
        self.config = config
        self.smoother_config = smoother or SmootherConfig()
        self.cover_lost_s = cover_lost_s
        self.tracks: list[Track] = []
        self._ids = itertools.count(1)
        self.tracks_started = 0
        self.tracks_ended_by_cuts = 0
        self.tentative: list[Face] = []  # the last step's unconfirmed faces

    def end_all(self, t_s: float) -> None:
        """A scene cut: every track ends now (no hold, no fade) and no id carries over. What the
        viewer sees until the detector reports on the new shot is the track stage's: the frame is
        ``blind`` (covered whole) under a covering policy, a false cut on a live camera included."""
        self.tracks_ended_by_cuts += len(self.tracks)
        self.tracks = []
        self.tentative = []

    def step(self, detections: list[Detection] | None, t_detected_s: float | None, t_now_s: float) -> list[Face]:
        """Advance to ``t_now_s``. ``detections`` are new results taken at ``t_detected_s``, or None
        when the detector produced nothing new (between cadence frames, or still running)."""
        for track in self.tracks:
            track.raw_this_step = None
        if detections is not None:
            self._associate(detections, t_detected_s if t_detected_s is not None else t_now_s)
        self._expire(t_now_s)
        faces = [self._face(track, t_now_s) for track in self.tracks]
        self.tentative = [face for face in faces if face.state == "tentative"]
        return [face for face in faces if face.state != "tentative"]

    def _associate(self, detections: list[Detection], t_s: float) -> None:
        boxes = [box_from_landmarks(d.landmarks) for d in detections]
        predicted = [box_from_landmarks(t.landmarks_at(t_s, self.config.coast_s)) for t in self.tracks]
        matched_tracks: set[int] = set()
        matched_detections: set[int] = set()
        if self.tracks and detections:
            cost = np.array([[1.0 - box_iou(p, b) for b in boxes] for p in predicted])
            rows, cols = linear_sum_assignment(cost)
            for row, col in zip(rows, cols, strict=True):
                if 1.0 - cost[row, col] >= self.config.match_iou:
                    self._continue(self.tracks[row], detections[col], t_s)
                    matched_tracks.add(row)
                    matched_detections.add(col)
        for index, track in enumerate(self.tracks):
            if index not in matched_tracks and track.missed_since_s is None:
                track.missed_since_s = t_s
        # A tentative face that was not seen again was a false detection: drop it now.
        self.tracks = [t for i, t in enumerate(self.tracks) if i in matched_tracks or t.confirmed_at_s is not None]
        for index, detection in enumerate(detections):
            if index not in matched_detections:
                self.tracks.append(self._birth(detection, t_s))

    def _birth(self, detection: Detection, t_s: float) -> Track:
        smoother = LandmarkSmoother(detection.landmarks, t_s, self.smoother_config) if self.config.smoothing == "kalman" else None
        self.tracks_started += 1
        track = Track(next(self._ids), smoother, detection.landmarks, t_s, t_s, last_detection=detection)
        track.raw_this_step = detection.landmarks
        if self.config.birth_hits <= 1:
            track.confirmed_at_s = t_s
        return track

    def _continue(self, track: Track, detection: Detection, t_s: float) -> None:
        if track.smoother is not None:
            track.smoother.update(detection.landmarks, t_s)
        track.last_landmarks = detection.landmarks
        track.last_detection = detection
        track.raw_this_step = detection.landmarks
        track.t_seen_s = t_s
        track.missed_since_s = None
        track.hits += 1
        if track.confirmed_at_s is None and track.hits >= self.config.birth_hits:
            track.confirmed_at_s = t_s

    def _expire(self, t_now_s: float) -> None:
        limit = self.config.coast_s + (self.config.fade_s if self.cover_lost_s is None else self.cover_lost_s)
        self.tracks = [t for t in self.tracks if t.missed_since_s is None or t_now_s - t.missed_since_s <= limit]

    def _lost_for_s(self, track: Track, t_now_s: float) -> float:
        """How long past the coast time the detector has missed the track (≤ 0: not lost)."""
        return -1.0 if track.missed_since_s is None else t_now_s - track.missed_since_s - self.config.coast_s

    def _alpha(self, track: Track, t_now_s: float) -> float:
        if track.confirmed_at_s is None:
            return 0.0
        if self.cover_lost_s is not None:  # no fade to or from the real face: swap, or the policy's cover
            return 1.0 if self._lost_for_s(track, t_now_s) <= 0 else 0.0
        fade = self.config.fade_s
        # Fade in from the first sighting, so by confirmation the face is already partly in.
        alpha_in = 1.0 if fade == 0 else float(np.clip((t_now_s - track.t_first_s) / fade + 1e-9, 0.05, 1.0))
        lost_for = self._lost_for_s(track, t_now_s)
        alpha_out = 1.0 if lost_for <= 0 else (0.0 if fade == 0 else max(0.0, 1.0 - lost_for / fade))
        return float(min(alpha_in, alpha_out))

    def _face(self, track: Track, t_now_s: float) -> Face:
        state: FaceState = "tentative" if track.confirmed_at_s is None else ("lost" if self._lost_for_s(track, t_now_s) > 0 else "live")
        landmarks = track.landmarks_at(t_now_s, self.config.coast_s)
        crop_from_frame = crop_from_frame_matrix(five_points(landmarks), self.config.crop_px, self.config.template_name)
        return Face(
            track_id=track.track_id,
            landmarks=landmarks,
            raw_landmarks=track.raw_this_step,
            box=box_from_landmarks(landmarks),
            alpha=self._alpha(track, t_now_s),
            crop_from_frame=crop_from_frame,
            frame_from_crop=invert_affine(crop_from_frame),
            crop_size=self.config.crop_px,
            detection=track.last_detection,
            state=state,
            confirmed_for_s=0.0 if track.confirmed_at_s is None else max(0.0, t_now_s - track.confirmed_at_s),
        )


class TrackStage(Stage):
    name = "track"
    reads = ("frame", "detections", "detections_media_time_s", "media_time_s")
    writes = (
        "faces", "tentative_faces", "scene_cut", "blind", "faces.track_id", "faces.landmarks", "faces.raw_landmarks", "faces.box",
        "faces.alpha", "faces.crop_from_frame", "faces.frame_from_crop", "faces.crop_size", "faces.state", "faces.confirmed_for_s",
    )

    def __init__(self, config: TrackConfig, smoother: SmootherConfig | None = None, *, cover_lost_s: float | None = None) -> None:
        self.config = config
        self.tracker = FaceTracker(config, smoother, cover_lost_s=cover_lost_s)
        self.frames_without_face = 0
        self.scene_cuts = 0
        self._thumbnail: np.ndarray | None = None
        self._cut_at_s = float("-inf")
        # from the start and from each cut, until the detector reports on a frame of the (new) shot
        self._blind = cover_lost_s is not None
        self.blind_frames = 0
        self._anchor: np.ndarray | None = None  # the frame (sampled) the faces on show were last placed on
        self._shown: dict[int, Face] = {}
        self.faces_held_on_repeats = 0

    def process(self, bundle: FrameBundle) -> FrameBundle:
        if self.config.scene_cut > 0:
            current = thumbnail(bundle.frame)
            if is_scene_cut(self._thumbnail, current, self.config.scene_cut):
                self.tracker.end_all(bundle.media_time_s)
                self.scene_cuts += 1
                self._cut_at_s = bundle.media_time_s
                self._blind = self.tracker.cover_lost_s is not None
                bundle.scene_cut = True
            self._thumbnail = current
        detections, t_detected = bundle.detections, bundle.detections_media_time_s
        if detections is not None and (t_detected if t_detected is not None else bundle.media_time_s) < self._cut_at_s:
            detections = None  # seen in the last shot
        if detections is not None:
            self._blind = False  # the detector has looked at the new shot: its faces are tracked from here
        bundle.blind = self._blind
        self.blind_frames += self._blind
        bundle.faces = self.tracker.step(detections, t_detected, bundle.media_time_s)
        self._hold_on_repeat(bundle)
        bundle.tentative_faces = self.tracker.tentative
        if not bundle.faces:
            self.frames_without_face += 1
        return bundle

    def _hold_on_repeat(self, bundle: FrameBundle) -> None:
        """On a frame that repeats the last one (``vision.repeat``), each face keeps the place it
        was shown at: the tracker has stepped (its state stays right), but what it would show is
        its smoother catching up with older motion, which on an unchanged picture is shimmer."""
        if not bundle.faces and not self._shown:  # nobody on show: nothing to hold, no frame to sample
            self._anchor = None
            return
        current = sample(bundle.frame)
        if bundle.scene_cut or not repeats(self._anchor, current, [face.box for face in self._shown.values()]):
            self._anchor = current
        else:
            for face in bundle.faces:
                last = self._shown.get(face.track_id)
                if last is None or not _detector_agrees(face, last):
                    continue
                face.landmarks, face.box, face.crop_from_frame, face.frame_from_crop = last.landmarks, last.box, last.crop_from_frame, last.frame_from_crop
                self.faces_held_on_repeats += 1
        self._shown = {face.track_id: face for face in bundle.faces}

    def describe(self) -> dict[str, object]:
        return {
            "smoothing": self.config.smoothing,
            "crop_size": self.config.crop_px,
            "template": self.config.template_name,
            "frames_without_face": self.frames_without_face,
            "tracks_started": self.tracker.tracks_started,
            "scene_cuts": self.scene_cuts,
            "tracks_ended_by_cuts": self.tracker.tracks_ended_by_cuts,
            "frames_covered_whole_after_cuts": self.blind_frames,
            "faces_held_on_repeated_frames": self.faces_held_on_repeats,
        }


def _detector_agrees(face: Face, last: Face) -> bool:
    """No new detection of the face, or one that barely moved from the last one shown."""
    if face.raw_landmarks is None or last.raw_landmarks is None:
        return True
    return float(np.abs(face.raw_landmarks - last.raw_landmarks).mean()) < RAW_STILL_PX
