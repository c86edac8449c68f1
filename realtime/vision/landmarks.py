"""MediaPipe face-mesh landmark indices and small pure functions on landmark arrays.

``landmarks`` are (N, 2) float pixel coordinates in the frame (x right, y down), N = 478
(468 mesh points + 10 iris points). "Left"/"right" below are as seen in the image.
"""

from __future__ import annotations

import math

import numpy as np

LANDMARK_COUNT = 478  # FaceLandmarker's points per face (468 mesh + 10 iris)
# Eye corners: outer/inner of the eye on the image's left, inner/outer of the one on its right.
LEFT_EYE_CORNERS = (33, 133)
RIGHT_EYE_CORNERS = (362, 263)
NOSE_TIP = 1
MOUTH_LEFT, MOUTH_RIGHT = 61, 291
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)
LEFT_EYE = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
RIGHT_EYE = (362, 398, 384, 385, 386, 387, 388, 466, 263, 249, 390, 373, 374, 380, 381, 382)
INNER_LIPS = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
# Points that move with the skull, not with expression: used to tell head motion from talking.
RIGID_POINTS = (33, 133, 362, 263, 1, 168, 6, 197, 234, 454, 10, 152)


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """(5, 2): eye centres (from the corners, so gaze does not move them), nose tip, mouth corners."""
    return np.stack(
        [
            landmarks[list(LEFT_EYE_CORNERS)].mean(axis=0),
            landmarks[list(RIGHT_EYE_CORNERS)].mean(axis=0),
            landmarks[NOSE_TIP],
            landmarks[MOUTH_LEFT],
            landmarks[MOUTH_RIGHT],
        ]
    ).astype(np.float64)


def yaw_proxy(landmarks: np.ndarray) -> float:
    """How far the nose tip sits from the eye midpoint, across the eye line, in eye distances:
    0 for a frontal face, about ±0.5 in profile."""
    points = five_points(landmarks)
    eye_mid = (points[0] + points[1]) / 2
    axis = points[1] - points[0]
    iod = float(np.linalg.norm(axis))
    return float(np.dot(points[2] - eye_mid, axis / iod) / iod) if iod > 0 else 0.0


def inter_ocular_distance(landmarks: np.ndarray) -> float:
    """Distance between the eye centres, in pixels: the face's natural unit of length."""
    # the eye centres of ``five_points`` with Python floats: called per face and frame, where
    # numpy's fancy indexing and means cost ~10× more than the arithmetic
    (a0, a1), (b0, b1), (c0, c1), (d0, d1) = landmarks[list(LEFT_EYE_CORNERS + RIGHT_EYE_CORNERS)].tolist()
    return math.hypot((c0 + d0 - a0 - b0) / 2, (c1 + d1 - a1 - b1) / 2)


def box_from_landmarks(landmarks: np.ndarray) -> tuple[float, float, float, float]:
    """Tight ``(x0, y0, x1, y1)`` around the landmarks."""
    x0, y0 = landmarks.min(axis=0)
    x1, y1 = landmarks.max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def plausible_face_layout(centre: tuple[float, float] = (320.0, 240.0), iod: float = 60.0) -> np.ndarray:
    """A plausible 478-point face layout (not a real mesh): the oval, eyes, nose and lips where a
    face has them, so masks and alignment behave as on a detected face. Frame pixels. What tests
    stand in for a detection, and what a reenactment refiner warps by before it has a source."""
    cx, cy = centre
    points = np.tile([cx, cy], (478, 1)).astype(np.float64)

    def ellipse(indices: tuple[int, ...], x: float, y: float, rx: float, ry: float) -> None:
        angles = np.linspace(0, 2 * np.pi, len(indices), endpoint=False) - np.pi / 2
        points[list(indices)] = np.stack([x + rx * np.cos(angles), y + ry * np.sin(angles)], axis=1)

    ellipse(FACE_OVAL, cx, cy + 0.25 * iod, 1.0 * iod, 1.35 * iod)
    ellipse(LEFT_EYE, cx - iod / 2, cy - 0.2 * iod, 0.22 * iod, 0.09 * iod)
    ellipse(RIGHT_EYE, cx + iod / 2, cy - 0.2 * iod, 0.22 * iod, 0.09 * iod)
    ellipse(INNER_LIPS, cx, cy + 0.75 * iod, 0.3 * iod, 0.08 * iod)
    points[[33, 133]] = [[cx - 0.72 * iod, cy - 0.2 * iod], [cx - 0.28 * iod, cy - 0.2 * iod]]
    points[[362, 263]] = [[cx + 0.28 * iod, cy - 0.2 * iod], [cx + 0.72 * iod, cy - 0.2 * iod]]
    points[1] = [cx, cy + 0.3 * iod]
    points[61], points[291] = [cx - 0.38 * iod, cy + 0.75 * iod], [cx + 0.38 * iod, cy + 0.75 * iod]
    return points
