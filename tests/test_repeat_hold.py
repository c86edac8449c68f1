"""A repeated camera frame keeps the faces where they were shown: the smoother's catching-up is
not allowed to move a face the camera did not move."""

from __future__ import annotations

import numpy as np

from realtime.bundle import Detection, FrameBundle
from realtime.config import TrackConfig
from realtime.stages.track import TrackStage
from realtime.testing import make_face_landmarks, make_ground_truth_frame
from realtime.vision.repeat import REPEAT_GREY, repeats, sample

BOX = [(200.0, 100.0, 440.0, 380.0)]


def noisy(frame: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(frame + rng.normal(0, sigma, frame.shape), 0, 255).astype(np.uint8)


def test_only_a_frame_equal_to_the_anchor_inside_the_face_boxes_repeats() -> None:
    frame = make_ground_truth_frame(0, sensor_noise=0)
    anchor = sample(frame)
    assert repeats(anchor, sample(frame.copy()), BOX)
    assert not repeats(anchor, sample(noisy(frame, 2.0, 1)), BOX)  # a live camera's noise alone is no repeat
    assert not repeats(anchor, sample(np.roll(frame, 3, axis=1)), BOX)  # the face moved 3 px
    elsewhere = frame.copy()
    elsewhere[:50] = 0  # a change far from every face box
    assert repeats(anchor, sample(elsewhere), BOX)
    assert not repeats(None, anchor, BOX) and not repeats(anchor, anchor, []) and not repeats(anchor, anchor[:-1], BOX)


def test_a_face_creeping_by_a_hair_a_frame_still_moves_against_the_anchor() -> None:
    base = make_ground_truth_frame(0, sensor_noise=0).astype(np.float64)
    anchor = sample(base.astype(np.uint8))
    drifted = [sample(np.clip(base + step * 0.05, 0, 255).astype(np.uint8)) for step in range(1, 40)]
    held = [repeats(anchor, frame, BOX) for frame in drifted]
    assert held[0] and not held[-1]  # a tiny change holds; accumulated against the anchor it does not
    assert REPEAT_GREY < 1.0


def face_at(x: float) -> Detection:
    return Detection(make_face_landmarks((x, 240.0), 60.0))


def run(stage: TrackStage, frames: list[np.ndarray], xs: list[float | None]) -> list[np.ndarray]:
    shown = []
    for index, (frame, x) in enumerate(zip(frames, xs, strict=True)):
        bundle = FrameBundle(index, 0, frame, index / 30)
        if x is not None:
            bundle.detections, bundle.detections_media_time_s = [face_at(x)], index / 30
        stage.process(bundle)
        shown.append(bundle.faces[0].landmarks.copy() if bundle.faces else None)
    return shown


def test_on_a_repeated_frame_the_face_stays_where_it_was_shown() -> None:
    stage = TrackStage(TrackConfig(birth_hits=1, crop_size=128))
    moving = [noisy(make_ground_truth_frame(i, sensor_noise=0), 2.0, i) for i in range(8)]
    frames = moving + [moving[-1]] * 3 + [noisy(make_ground_truth_frame(9, sensor_noise=0), 2.0, 99)]
    # the face moves 6 px a frame, then the camera repeats its last frame three times (the detector,
    # seeing the same picture, reports the same face), then a new frame
    xs: list[float | None] = [300.0 + 6 * i for i in range(8)] + [342.0, None, 342.0, 348.0]
    shown = run(stage, frames, xs)
    assert all(np.array_equal(shown[i], shown[7]) for i in (8, 9, 10)), "the smoother moved a face on a repeated frame"
    assert not np.array_equal(shown[11], shown[7])  # a new frame: the face follows again
    assert stage.describe()["faces_held_on_repeated_frames"] == 3
    unheld = TrackStage(TrackConfig(birth_hits=1, crop_size=128))
    moved = run(unheld, frames[:8] + [frames[7]], xs[:8] + [352.0])  # same picture, but the detector says it moved 10 px
    assert not np.array_equal(moved[8], moved[7])
