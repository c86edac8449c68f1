"""Track ids, births, deaths and fades, with synthetic detections."""

import numpy as np

from realtime.bundle import Detection
from realtime.config import TrackConfig
from realtime.stages.track import FaceTracker

FPS = 30.0


def _face_at(cx: float, cy: float, size: float = 60.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    points = rng.uniform(-0.5, 0.5, (478, 2)) * size + [cx, cy]
    iod = size * 0.4
    points[[33, 133]] = [[cx - iod * 0.75, cy - 8], [cx - iod * 0.25, cy - 8]]
    points[[362, 263]] = [[cx + iod * 0.25, cy - 8], [cx + iod * 0.75, cy - 8]]
    points[1], points[61], points[291] = [cx, cy + 5], [cx - 10, cy + 18], [cx + 10, cy + 18]
    return points


def test_ids_stay_stable_through_a_crossing():
    tracker = FaceTracker(TrackConfig(birth_hits=1))
    ids_by_side = []
    for i in range(60):
        # two faces pass each other: one moves right, one left, at different heights (a real crossing overlaps partly)
        a = _face_at(100 + 6 * i, 200, seed=1)
        b = _face_at(460 - 6 * i, 240, seed=2)
        faces = tracker.step([Detection(a), Detection(b)], i / FPS, i / FPS)
        assert len(faces) == 2
        left_mover = min(faces, key=lambda f: abs(f.box[1] + f.box[3] - 400))  # the face at y≈200
        ids_by_side.append(left_mover.track_id)
    assert len(set(ids_by_side)) == 1
    assert tracker.tracks_started == 2


def test_birth_needs_consecutive_hits_and_false_detections_vanish():
    tracker = FaceTracker(TrackConfig(birth_hits=3))
    face = Detection(_face_at(200, 200))
    assert tracker.step([face], 0.0, 0.0) == []
    assert tracker.step([], 1 / FPS, 1 / FPS) == []  # seen once, then gone: a false detection
    assert tracker.tracks == []
    for i in range(2, 4):
        assert tracker.step([face], i / FPS, i / FPS) == []
    assert len(tracker.step([face], 4 / FPS, 4 / FPS)) == 1


def test_lost_face_coasts_then_fades_then_ends():
    config = TrackConfig(birth_hits=1, coast_s=0.1, fade_s=0.2)
    tracker = FaceTracker(config)
    for i in range(30):
        tracker.step([Detection(_face_at(200 + i, 200))], i / FPS, i / FPS)
    alphas = []
    for i in range(30, 45):
        faces = tracker.step([], i / FPS, i / FPS)
        alphas.append(faces[0].alpha if faces else None)
    assert alphas[0] == 1.0 and alphas[2] == 1.0  # coasting (0.1 s = 3 frames)
    fading = [a for a in alphas if a is not None and a < 1.0]
    assert fading == sorted(fading, reverse=True) and len(fading) >= 4
    assert alphas[-1] is None  # ended


def test_fade_in_at_birth():
    tracker = FaceTracker(TrackConfig(birth_hits=1, fade_s=0.2))
    alphas = [tracker.step([Detection(_face_at(200, 200))], i / FPS, i / FPS)[0].alpha for i in range(10)]
    assert alphas[0] < 0.2 and alphas[-1] == 1.0 and alphas == sorted(alphas)


def test_detector_not_run_means_prediction_not_loss():
    tracker = FaceTracker(TrackConfig(birth_hits=1, coast_s=0.1, fade_s=0.1))
    for i in range(10):
        tracker.step([Detection(_face_at(200 + 3 * i, 200))], i / FPS, i / FPS)
    # Detections only every 5th frame: between them the face is predicted, never faded.
    for i in range(10, 40):
        detections = [Detection(_face_at(200 + 3 * i, 200))] if i % 5 == 0 else None
        faces = tracker.step(detections, i / FPS if detections else None, i / FPS)
        assert len(faces) == 1 and faces[0].alpha == 1.0
        assert abs((faces[0].box[0] + faces[0].box[2]) / 2 - (200 + 3 * i)) < 6.0  # within 2 frames of motion


def test_face_leaving_the_frame_ends_its_track():
    tracker = FaceTracker(TrackConfig(birth_hits=1, coast_s=0.05, fade_s=0.05))
    for i in range(20):
        tracker.step([Detection(_face_at(600 + 10 * i, 200))] if i < 10 else [], i / FPS, i / FPS)
    assert tracker.tracks == []


def test_faces_carry_alignment_matrices():
    tracker = FaceTracker(TrackConfig(birth_hits=1, crop_size=128))
    (face,) = tracker.step([Detection(_face_at(300, 200))], 0.0, 0.0)
    assert face.crop_from_frame.shape == (2, 3) and face.crop_size == 128
    assert np.allclose(face.crop_from_frame @ np.vstack([face.frame_from_crop, [0, 0, 1]]), [[1, 0, 0], [0, 1, 0]])


def test_smoothing_off_passes_raw_landmarks():
    """Several noisy detections of a still face: with smoothing off every frame's landmarks are that
    frame's detection, exactly (the smoother's first output is the raw detection anyway, so one
    step could not tell); with it on, the same frames come out smoothed (so this can fail)."""
    rng = np.random.default_rng(0)
    raws = [_face_at(300, 200) + rng.normal(0, 1.0, (1, 2)) for _ in range(6)]
    off = FaceTracker(TrackConfig(birth_hits=1, smoothing="off"))
    on = FaceTracker(TrackConfig(birth_hits=1, smoothing="kalman"))
    for i, raw in enumerate(raws):
        (face,) = off.step([Detection(raw)], i / FPS, i / FPS)
        assert np.array_equal(face.landmarks, raw)
        (smoothed,) = on.step([Detection(raw)], i / FPS, i / FPS)
    assert not np.allclose(smoothed.landmarks, raws[-1], atol=0.05)
