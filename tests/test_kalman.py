"""The smoother on synthetic landmark tracks with exactly known truth."""

import numpy as np
import pytest

from realtime.io.demo import demo_frame_from_image
from realtime.vision.align import apply_affine
from realtime.vision.kalman import (
    LandmarkSmoother,
    SmootherConfig,
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


def test_still_face_keeps_at_most_a_third_of_the_detector_shimmer():
    """How hard a still face is smoothed is tuned (the noise gate, the running mean's weight): a
    mistuned rule lets a third or more of the detector's frame-to-frame shimmer through."""
    truth = np.repeat(_face()[None], 150, axis=0)
    raw, smoothed = _run(truth, noise=0.6)
    assert _jitter(smoothed[30:], truth[30:]) <= 0.3 * _jitter(raw[30:], truth[30:])


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


# --- the adaptive rules, each from what a viewer would see go wrong -------------------------------


def _centre_x(landmarks: np.ndarray, face: np.ndarray) -> float:
    return float(landmarks.mean(axis=0)[0] - face.mean(axis=0)[0])


def _rolled(face: np.ndarray, angle: float, centre: tuple[float, float] = (320.0, 240.0)) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return (face - centre) @ np.array([[c, -s], [s, c]]).T + centre


def test_a_head_that_stops_is_held_where_it_stopped():
    """Velocity decay: a head pans at 90 px/s for a second and stops; three frames later the
    detector loses it. Half a second of prediction must not carry the swap on past where the head
    stopped (without the decay it drifts ~3.5 px; without the noise floor it is flung ~50 px)."""
    face = _face()
    smoother = LandmarkSmoother(face, 0.0)
    for i in range(1, 34):
        smoother.update(face + [3.0 * min(i, 30), 0.0], i / FPS)
    assert abs(_centre_x(smoother.smoothed, face) - 90.0) < 1.0  # it has settled where the head stopped
    assert abs(_centre_x(smoother.predict(33 / FPS + 0.5), face) - 90.0) < 1.5


def test_velocity_is_forgotten_over_its_memory_time():
    """The velocity kept after ``velocity_memory_s`` of frames is 1/e of it, whatever the frame rate."""
    smoother = LandmarkSmoother(_face(), 0.0)
    memory_s = smoother.config.velocity_memory_s
    for fps in (30.0, 60.0):
        steps = round(memory_s * fps)
        big_f, _ = smoother._models(1 / fps, np.ones(4), np.ones(4))
        kept = np.linalg.matrix_power(big_f, steps)[1, 1]
        assert kept == pytest.approx(np.exp(-1.0), rel=1e-9)
        assert big_f[0, 1] == pytest.approx(1 / fps)  # position moves on by velocity × dt


def test_an_upside_down_face_is_smoothed_exactly_like_an_upright_one():
    """Roll wrapping at ±π: a face at 180° whose roll jitters across +π/−π (atan2's seam) must be
    smoothed as the same face upright, rotated; an unwrapped 2π step reads as a huge sudden move
    (the swap spins off by tens of pixels) or as a very noisy detector."""
    face = _face()
    rng = np.random.default_rng(3)
    jitter = rng.normal(0, 0.01, 90)  # rad: the detector's roll noise
    outputs = []
    for base in (0.0, np.pi):
        smoother = LandmarkSmoother(_rolled(face, base + jitter[0]), 0.0)
        outputs.append(np.array([smoother.update(_rolled(face, base + a), i / FPS).copy() for i, a in enumerate(jitter[1:], 1)]))
    upright, upside_down = outputs
    assert np.abs(_rolled(upright, np.pi) - upside_down).max() < 1e-3  # pixels
    # and the smoothing did something: the upright track is steadier than its raw input
    raw = np.array([_rolled(face, a) for a in jitter[1:]])
    assert _jitter(upright[30:], np.repeat(face[None], 59, axis=0)) < _jitter(raw[30:], np.repeat(face[None], 59, axis=0))


def _noisy_smoother(noise_px: float, frames: int, seed: int = 1, smoother: LandmarkSmoother | None = None, start: int = 1) -> LandmarkSmoother:
    face = _face()
    rng = np.random.default_rng(seed)
    smoother = smoother or LandmarkSmoother(face, 0.0)
    for i in range(start, start + frames):
        smoother.update(face + rng.normal(0, noise_px, (1, 2)) + rng.normal(0, noise_px / 3, face.shape), i / FPS)
    return smoother


def test_the_detector_noise_estimate_stays_between_its_floor_and_the_configured_sigmas():
    """The noise ratio cap: a detector noisier than the configured sigmas is smoothed as hard as
    those say, never harder (more would lag a moving face); a perfect one is still smoothed
    down to the floor, never trusted blindly."""
    config = SmootherConfig()
    very_noisy = _noisy_smoother(10.0, 120)
    assert np.all(very_noisy.noise_ratio <= 1.0)
    assert very_noisy.noise_ratio[:2].max() == 1.0  # it did reach the cap on translation
    perfect = _noisy_smoother(0.0, 60)
    assert np.all(perfect.noise_ratio == config.noise_floor_ratio)


def test_the_detector_noise_estimate_falls_at_once_and_rises_slowly():
    """A noisy stretch (low light) then a steady detector: smoothing relaxes as soon as the
    steady frames show it (three frames: a second difference needs three). The other way round,
    two noisy frames are not yet taken for a noisy detector (it rises over ``noise_rise_s``)."""
    config = SmootherConfig()
    smoother = _noisy_smoother(10.0, 90)
    assert smoother.noise_ratio[:2].min() > 0.5
    smoother = _noisy_smoother(0.0, 3, smoother=smoother, start=91)
    assert np.all(smoother.noise_ratio == config.noise_floor_ratio)
    before = smoother.noise_ratio.copy()
    smoother = _noisy_smoother(10.0, 2, seed=7, smoother=smoother, start=94)
    rise = 1 / FPS / config.noise_rise_s
    assert np.all(smoother.noise_ratio < before + 2 * rise * 20)  # two slow steps, not a jump to the cap
    assert smoother.noise_ratio[:2].max() < 0.6


def test_a_smooth_pan_is_not_taken_for_detector_noise():
    """Motion must not look like noise: a constant-velocity pan has no second difference."""
    face = _face()
    smoother = LandmarkSmoother(face, 0.0)
    for i in range(1, 60):
        smoother.update(face + [3.0 * i, 1.0 * i], i / FPS)
    assert np.all(smoother.noise_ratio == SmootherConfig().noise_floor_ratio)


@pytest.mark.parametrize(("jump_px", "first_frame_px"), [(5.0, 2.0), (30.0, 12.0)])
def test_a_sudden_move_is_followed_at_once(jump_px, first_frame_px):
    """The sudden-motion rule: a still head snaps sideways and stays. The swap is most of the way
    there on the first frame and on it by the third — not sliding after it for a second."""
    face = _face()
    smoother = LandmarkSmoother(face, 0.0)
    for i in range(1, 30):
        smoother.update(face, i / FPS)
    errors = [abs(_centre_x(smoother.update(face + [jump_px, 0.0], i / FPS), face) - jump_px) for i in range(30, 36)]
    assert errors[0] < first_frame_px
    assert max(errors[2:]) < 0.6


def test_process_noise_stays_under_its_ceiling_and_relaxes_after_the_move():
    """After a 300 px jump the process noise is at its ceiling, not past it (past it the filter
    passes raw detector noise through); once the head is still again it falls back, so a still
    face is smoothed as before the move."""
    config = SmootherConfig()
    face = _face()
    smoother = LandmarkSmoother(face, 0.0)
    for i in range(1, 10):
        smoother.update(face, i / FPS)
    smoother.update(face + [300.0, 0.0], 10 / FPS)
    assert smoother.q[0] == config.q_ceiling
    for i in range(11, 11 + round(3 * FPS)):
        smoother.update(face + [300.0, 0.0], i / FPS)
    assert np.all(smoother.q == config.q_floor)


def test_a_still_face_after_a_sudden_move_is_smoothed_as_before_it():
    """Release: a noisy still face, a 30 px jump, still again. A second after the jump the
    shimmer is back to what it was before (process noise left high would show the detector's)."""
    face = _face()
    rng = np.random.default_rng(5)
    truth = np.array([face + [0.0 if i < 40 else 30.0, 0.0] for i in range(150)])
    raw = truth + rng.normal(0, 0.6, (150, 1, 2)) + rng.normal(0, 0.2, truth.shape)
    smoother = LandmarkSmoother(raw[0], 0.0)
    smoothed = np.array([raw[0]] + [smoother.update(raw[i], i / FPS).copy() for i in range(1, 150)])
    before = _jitter(smoothed[10:38], truth[10:38])
    after = _jitter(smoothed[80:], truth[80:])
    assert after < 1.3 * before
    assert after < 0.6 * _jitter(raw[80:], truth[80:])


def test_a_rolling_head_is_predicted_along_its_roll():
    """A head tilted 30° and rolling on at 1 rad/s about the point between its eyes, detected
    without noise: the smoothed landmarks stay on the detected ones, and three frames of prediction
    (the detector busy) roll the face on, not shear it (a wrong sign in the rotation cancels on
    a still face, and at 0° or 180° the sine vanishes: only a turning, tilted face shows it)."""
    face = _face()
    eyes = (320.0, 220.5)
    truth = [_rolled(face, np.radians(30) + i / FPS, eyes) for i in range(34)]
    smoother = LandmarkSmoother(truth[0], 0.0)
    for i in range(1, 31):
        smoothed = smoother.update(truth[i], i / FPS)
    assert np.abs(smoothed - truth[30]).max() < 1.0  # px: ~0.36 (the smoothing lags a little)
    assert np.abs(smoother.predict(33 / FPS) - truth[33]).max() < 6.0  # ~3 (holding still: ~14; sheared: ~34)


def test_expression_is_smoothed_but_a_mouth_opening_is_followed():
    """Residuals (mouth, brows, blinks) go through a 1€ filter in the head's frame: detector
    shimmer on the mouth of a still head is cut at least in half, and a mouth that opens 12 px
    in one frame is followed within a few frames (the cutoff rises with speed), not smeared
    over half a second."""
    face = _face()
    mouth = np.zeros(len(face), bool)
    mouth[[61, 291]] = True
    mouth[400:478] = True  # a block of non-rigid points standing in for the lips
    rng = np.random.default_rng(4)
    smoother = LandmarkSmoother(face, 0.0)
    raw_error, smoothed_error = [], []
    for i in range(1, 60):
        raw = face.copy()
        raw[mouth] += rng.normal(0, 0.8, (mouth.sum(), 2))
        out = smoother.update(raw, i / FPS)
        if i > 20:
            raw_error.append(np.abs(raw[mouth] - face[mouth]).mean())
            smoothed_error.append(np.abs(out[mouth] - face[mouth]).mean())
    assert np.mean(smoothed_error) < 0.5 * np.mean(raw_error)
    opened = face.copy()
    opened[mouth, 1] += 12.0
    lags = [float(np.abs(smoother.update(opened, i / FPS)[mouth, 1] - opened[mouth, 1]).mean()) for i in range(60, 70)]
    assert lags[0] < 6.0 and lags[2] < 1.5 and lags[-1] < 0.2, lags  # px: ~4.7, 1.0, 0.04 as tuned
