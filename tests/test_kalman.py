"""The smoother on synthetic landmark tracks with exactly known truth."""

import numpy as np
import pytest

from realtime.io.demo import demo_frame_from_image
from realtime.vision.align import apply_affine
from realtime.vision.kalman import (
    LandmarkSmoother,
    block_diagonal,
    pose_params,
    similarity_from_params,
    white_noise_block,
)

FPS = 30.0


def _face(seed: int = 0) -> np.ndarray:
    """A plausible 478-point face: a random cloud with the 5 key points in face-like places."""
    rng = np.random.default_rng(seed)
    points = rng.normal([320, 240], [40, 50], (478, 2))
    points[[33, 133]] = [[280, 220], [305, 221]]
    points[[362, 263]] = [[335, 221], [360, 220]]
    points[1], points[61], points[291] = [320, 250], [298, 280], [342, 280]
    return points


def _run(truth: np.ndarray, noise: float, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    # Detector noise is mostly common to all points (the mesh shifts as a whole) plus a little each.
    raw = truth + rng.normal(0, noise, (len(truth), 1, 2)) + rng.normal(0, noise / 3, truth.shape)
    smoother = LandmarkSmoother(raw[0], 0.0)
    smoothed = [raw[0]] + [smoother.update(raw[i], i / FPS).copy() for i in range(1, len(raw))]
    return raw, np.array(smoothed)


def _jitter(track: np.ndarray, truth: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(track - truth, axis=0), axis=-1).mean())


def test_pose_params_round_trip():
    params = np.array([10.0, -3.0, np.log(1.4), 0.2])
    assert np.allclose(pose_params(similarity_from_params(params)), params)


def test_still_face_jitter_is_at_least_halved():
    truth = np.repeat(_face()[None], 120, axis=0)
    raw, smoothed = _run(truth, noise=0.6)
    assert _jitter(smoothed[30:], truth[30:]) <= 0.5 * _jitter(raw[30:], truth[30:])
    assert np.abs(smoothed[30:] - truth[30:]).mean() < np.abs(raw[30:] - truth[30:]).mean()


def test_moving_face_lags_at_most_one_frame():
    face = _face()
    # the demo clip's known path: pans, zooms and rolls continuously
    truth = np.array([apply_affine(demo_frame_from_image(i), face - [256, 230]) for i in range(150)])
    raw, smoothed = _run(truth, noise=0.6)
    errors = {lag: np.linalg.norm(smoothed[10:-5] - truth[10 - lag : len(truth) - 5 - lag], axis=-1).mean() for lag in range(0, 4)}
    assert min(errors, key=errors.get) <= 1
    assert errors[0] < 2.0  # pixels: it follows the path closely


def test_prediction_continues_the_motion_between_detections():
    face = _face()
    truth = np.array([face + [3.0 * i, 0.0] for i in range(40)])  # 90 px/s to the right
    smoother = LandmarkSmoother(truth[0], 0.0)
    for i in range(1, 30):
        smoother.update(truth[i], i / FPS)
    predicted = smoother.predict(33 / FPS)
    assert np.abs(predicted - truth[33]).mean() == pytest.approx(0.0, abs=1.0)


def test_fast_model_matrices_equal_the_library_ones():
    from filterpy.common import Q_discrete_white_noise
    from scipy.linalg import block_diag

    blocks = np.random.default_rng(0).normal(size=(4, 2, 2))
    assert np.array_equal(block_diagonal(blocks), block_diag(*blocks))
    for dt in (1 / 60, 1 / 30, 0.2):
        assert np.allclose(white_noise_block(dt), Q_discrete_white_noise(dim=2, dt=dt, var=1.0), rtol=1e-12, atol=0)
