"""Landmark smoothing: a Kalman filter on the head's similarity transform, plus residuals.

Why this split (and not a filter per landmark coordinate): what makes a swap "swim" is the head
pose — the crop transform comes from it — and pose has 4 degrees of freedom that move together.
So the rigid motion (translation, log-scale, roll) goes through one filterpy ``KalmanFilter`` with
a constant-velocity model, and what is left (expression: mouth, brows, blinks) is smoothed in the
head's own frame, where head motion no longer shows up as landmark motion.

Both noises adapt, because the right amount of smoothing depends on the detector and the motion:
- measurement noise is estimated from the detector itself (second differences of the pose, which
  falls at once and rises slowly), so a steady detector (MediaPipe tracking one face) is barely
  touched and a noisy one (low light, re-detection every frame) is smoothed hard;
- process noise grows smoothly with the evidence of motion (a single large innovation, or a running
  mean of innovations for slow steady motion) and relaxes over ``release_s``: a still face gets
  heavy smoothing (no shimmer), a moving one a filter that follows at once (no lag).
Velocity decays over ``velocity_memory_s`` so the head does not drift on after it stops.
Residuals use an adaptive low-pass (a "1€ filter": the cutoff rises with speed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from filterpy.kalman import KalmanFilter

from realtime.vision.align import apply_affine, estimate_similarity, invert_affine
from realtime.vision.landmarks import RIGID_POINTS, five_points


@dataclass(frozen=True)
class SmootherConfig:
    """Noise levels in face units (1 = inter-ocular distance), angles in radians, times in s."""

    # Tuned on 13 real single-face talking-head clips (jitter against lag, per clip).
    measurement_sigma: float = 0.02  # detector noise on translation, in face units
    scale_sigma: float = 0.01  # on log-scale
    angle_sigma: float = 0.01  # on roll, rad
    q_floor: float = 0.005  # process noise floor (units²/s³): how much a still face may drift
    q_ceiling: float = 400.0  # process noise ceiling: fast motion
    release_s: float = 0.25  # how fast the noise falls back after motion stops
    power: float = 2.0  # how steeply process noise grows with motion evidence
    noise_floor_ratio: float = 0.2  # measured detector noise may fall to this fraction of the sigmas above
    noise_rise_s: float = 2.0  # the noise estimate rises this slowly (motion must not look like noise)
    gate: float = 2.0  # innovations below gate·σ are treated as noise, not motion
    velocity_memory_s: float = 0.3  # velocity decays with this time constant: no long drift after a stop
    evidence: float = 0.3  # weight of the newest innovation in the running mean that catches slow, steady motion
    residual_min_cutoff_hz: float = 0.5  # 1€ filter on expression residuals
    residual_beta: float = 3.0
    residual_d_cutoff_hz: float = 4.0


def pose_params(similarity: np.ndarray) -> np.ndarray:
    """(tx, ty, log scale, angle) of a 2×3 similarity matrix."""
    a, b = similarity[0, 0], similarity[1, 0]
    return np.array([similarity[0, 2], similarity[1, 2], math.log(math.hypot(a, b)), math.atan2(b, a)])


def similarity_from_params(params: np.ndarray) -> np.ndarray:
    tx, ty, log_scale, angle = params
    scale = math.exp(log_scale)
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    return np.array([[c, -s, tx], [s, c, ty]])


def canonical_reference(landmarks: np.ndarray) -> np.ndarray:
    """The face in its own frame: eye line horizontal, unit inter-ocular distance, eyes centred at 0."""
    points = five_points(landmarks)
    unit = np.array([[-0.5, 0.0], [0.5, 0.0]])
    return apply_affine(estimate_similarity(points[:2], unit), landmarks)


# Row and column indices of the four 2×2 diagonal blocks of an 8×8 matrix, one block per pose
# parameter (value, velocity): filling them by index costs a few µs where scipy's block_diag
# cost ~100 µs a call, and the tracker builds two such matrices per face per frame while holding
# the GIL that every other stage needs.
_BLOCK_ROWS = np.repeat(np.arange(8).reshape(4, 2), 2, axis=1).ravel()
_BLOCK_COLS = np.tile(np.arange(8).reshape(4, 2), (1, 2)).ravel()


def block_diagonal(blocks: np.ndarray) -> np.ndarray:
    """8×8 matrix with the four (4, 2, 2) ``blocks`` on its diagonal."""
    matrix = np.zeros((8, 8))
    matrix[_BLOCK_ROWS, _BLOCK_COLS] = blocks.reshape(-1)
    return matrix


def white_noise_block(dt: float) -> np.ndarray:
    """Discrete white-noise acceleration covariance of one (value, velocity) pair at unit variance:
    filterpy's ``Q_discrete_white_noise(dim=2, dt, var=1)`` in closed form (filterpy's goes
    through scipy's block_diag, ~50 µs). It scales linearly with the variance."""
    return np.array([[dt**4 / 4, dt**3 / 2], [dt**3 / 2, dt**2]])


class _OneEuro:
    """Vectorised 1€ filter (Casiez et al. 2012) over an array of values."""

    def __init__(self, value: np.ndarray, min_cutoff: float, beta: float, d_cutoff: float) -> None:
        self.value = value.copy()
        self.speed = np.zeros_like(value)
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        return 1.0 / (1.0 + 1.0 / (2 * math.pi * cutoff * dt))

    def __call__(self, value: np.ndarray, dt: float) -> np.ndarray:
        speed = (value - self.value) / dt
        self.speed += self._alpha(self.d_cutoff, dt) * (speed - self.speed)
        cutoff = self.min_cutoff + self.beta * np.abs(self.speed)
        self.value += self._alpha(cutoff, dt) * (value - self.value)
        return self.value


class LandmarkSmoother:
    """Smooths one face's landmarks over time; predicts them between detections."""

    def __init__(self, landmarks: np.ndarray, t_s: float, config: SmootherConfig = SmootherConfig()) -> None:
        self.config = config
        self.reference = canonical_reference(landmarks)
        self.rigid = list(RIGID_POINTS)
        params = self._measure(landmarks)
        self.kf = KalmanFilter(dim_x=8, dim_z=4)
        self.kf.x = np.zeros(8)
        self.kf.x[0::2] = params
        self.kf.H = np.zeros((4, 8))
        self.kf.H[np.arange(4), np.arange(0, 8, 2)] = 1.0
        self.kf.P = np.diag([1.0, 10.0] * 4) * 1e-2
        self.q = np.full(4, config.q_floor)
        self.noise_ratio = np.ones(4)  # measured detector noise, as a fraction of the configured sigmas
        self.recent: list[np.ndarray] = [params]  # the last two pose measurements
        self.mean_innovation = np.zeros(4)
        self.t_s = t_s
        residual = self._residual(landmarks, params)
        self.residual = _OneEuro(residual, config.residual_min_cutoff_hz, config.residual_beta, config.residual_d_cutoff_hz)
        self.smoothed = landmarks.astype(np.float64).copy()

    def _measure(self, landmarks: np.ndarray) -> np.ndarray:
        """Pose parameters of frame_from_canonical, estimated on the points that move with the skull."""
        return pose_params(estimate_similarity(self.reference[self.rigid], landmarks[self.rigid]))

    @staticmethod
    def _residual(landmarks: np.ndarray, params: np.ndarray) -> np.ndarray:
        return apply_affine(invert_affine(similarity_from_params(params)), landmarks)

    def _noise(self, face_px: float) -> tuple[np.ndarray, np.ndarray]:
        """Measurement variances and process-noise scales of (tx, ty, log s, angle)."""
        c = self.config
        r = np.array([(c.measurement_sigma * face_px) ** 2] * 2 + [c.scale_sigma**2, c.angle_sigma**2]) * self.noise_ratio**2
        unit = np.array([face_px**2, face_px**2, 1.0, 1.0])  # q is in face units: convert translation to px
        return r, unit

    def _models(self, dt: float, q: np.ndarray, unit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keep = math.exp(-dt / self.config.velocity_memory_s)
        f = np.array([[1.0, dt], [0.0, keep]])
        big_f = block_diagonal(np.broadcast_to(f, (4, 2, 2)))
        unit_q = white_noise_block(dt)
        big_q = block_diagonal((q * unit)[:, None, None] * unit_q)
        return big_f, big_q

    def _track_noise(self, measured: np.ndarray, face_px: float, dt: float) -> None:
        """Estimate the detector's own noise from second differences of the measurements (white
        noise of variance σ² gives 6σ²): falls at once, rises slowly, so a steady detector gets
        light smoothing (no wander) and a noisy one heavy smoothing."""
        c = self.config
        previous = self.recent
        self.recent = [*previous[-1:], measured]
        if len(previous) < 2:
            return  # a second difference needs two earlier measurements
        second = measured - 2 * previous[-1] + previous[-2]
        second[3] = (second[3] + math.pi) % (2 * math.pi) - math.pi
        sigma = np.array([c.measurement_sigma * face_px] * 2 + [c.scale_sigma, c.angle_sigma])
        observed = np.sqrt(second**2 / 6.0) / sigma
        rise = min(1.0, dt / c.noise_rise_s)
        updated = np.where(observed < self.noise_ratio, observed, self.noise_ratio + rise * (observed - self.noise_ratio))
        self.noise_ratio = np.clip(updated, c.noise_floor_ratio, 1.0)

    def predict(self, t_s: float) -> np.ndarray:
        """Landmarks expected at ``t_s`` (no measurement): pose extrapolated, expression held."""
        dt = max(t_s - self.t_s, 0.0)
        params = self.kf.x[0::2] + self.kf.x[1::2] * dt
        return apply_affine(similarity_from_params(params), self.residual.value)

    def update(self, landmarks: np.ndarray, t_s: float) -> np.ndarray:
        """Fold in a detection taken at ``t_s``; returns the smoothed landmarks."""
        c = self.config
        dt = max(t_s - self.t_s, 1e-3)
        measured = self._measure(landmarks)
        face_px = math.exp(measured[2])  # the reference has unit inter-ocular distance
        self._track_noise(measured, face_px, dt)
        r, unit = self._noise(face_px)
        f, q_unit_one = self._models(dt, np.ones(4), unit)
        predicted_p = f @ self.kf.P @ f.T
        predicted_x = f @ self.kf.x
        innovation = measured - predicted_x[0::2]
        innovation[3] = (innovation[3] + math.pi) % (2 * math.pi) - math.pi
        measured[3] = predicted_x[6] + innovation[3]  # keep the angle continuous
        # Motion evidence, as a ratio to what noise alone would give (≈1 on a still face): a
        # running mean of innovations catches slow, steady motion whose per-frame step hides in
        # the noise; a single large innovation catches a sudden move at once. q grows smoothly
        # with the evidence (no switching, so no steps on a still face) and relaxes with release_s.
        a = predicted_p[np.arange(0, 8, 2), np.arange(0, 8, 2)]
        beta = c.evidence
        self.mean_innovation = (1 - beta) * self.mean_innovation + beta * innovation
        noise = a + r
        steady = self.mean_innovation**2 / (noise * beta / (2 - beta))
        sudden = innovation**2 / (noise * c.gate**2)
        evidence = np.maximum(1.0, np.maximum(steady, sudden))
        target = c.q_floor * evidence**c.power
        decayed = self.q * math.exp(-dt / c.release_s)
        self.q = np.clip(np.maximum(target, decayed), c.q_floor, c.q_ceiling)
        self.kf.F, self.kf.Q = self._models(dt, self.q, unit)
        self.kf.R = np.diag(r)
        self.kf.predict()
        self.kf.update(measured)
        self.t_s = t_s
        residual = self.residual(self._residual(landmarks, measured), dt)
        self.smoothed = apply_affine(similarity_from_params(self.kf.x[0::2]), residual)
        return self.smoothed
