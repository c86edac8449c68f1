"""MediaPipe's FaceMesh network (468 landmarks from a 192² face crop) as a torch module, so the
landmarks can run on the GPU next to the generator, compiled like it.

The user supplies the ONNX file (the project ships no third-party weights); ``load_facemesh``
reads it with the project's ONNX converter (``models/onnx``) and refuses any other network. Input: (B, 192,
192, 3) RGB in [0, 1] (NHWC, as the file expects); output: (B, 1404) = 468 × (x, y, z), x and y in
crop pixels.

``mesh_crop_from_frame`` gives the crop the network expects from the previous frame's landmarks
(MediaPipe's own tracking rule: the landmarks' box, turned so the eyes are level, squared on its
long side and grown 1.5×).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from realtime.errors import ModelError

if TYPE_CHECKING:
    from realtime.models.onnx.graph import OnnxModule

MESH_SIZE = 192
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263  # as seen in the image: the subject's right eye is on the left


def load_facemesh(path: Path) -> OnnxModule:
    """The FaceMesh network from its ONNX file (eval mode, FP32, CPU), through the project's ONNX
    converter; ModelError when the file is missing, unreadable or another network."""
    from realtime.models.onnx.graph import load_onnx

    module, info = load_onnx(path, what="FaceMesh model")
    shape = list(info.inputs[0].shape) if info.inputs else []
    if len(info.inputs) != 1 or shape[1:] != [MESH_SIZE, MESH_SIZE, 3]:
        raise ModelError(f"{path} is not the FaceMesh network (input {shape}, {len(info.inputs)} input(s))", "pass MediaPipe's facemesh_468_192.onnx")
    return module


def mesh_crop_from_frame(landmarks: np.ndarray, size: int = MESH_SIZE, scale: float = 1.5) -> np.ndarray:
    """The 2×3 ``crop_from_frame`` of the network's input crop, from a face's landmarks (N ≥ 468,
    frame pixels): centred on their box, rotated so the outer eye corners are level, the long side
    of the box times ``scale`` across."""
    left, top = landmarks.min(axis=0)
    right, bottom = landmarks.max(axis=0)
    centre = np.array([(left + right) / 2, (top + bottom) / 2])
    eye_line = landmarks[LEFT_EYE_OUTER] - landmarks[RIGHT_EYE_OUTER]
    angle = float(np.arctan2(eye_line[1], eye_line[0]))
    side = scale * max(right - left, bottom - top)
    zoom = size / side
    cos, sin = np.cos(-angle) * zoom, np.sin(-angle) * zoom
    rotate = np.array([[cos, -sin], [sin, cos]])
    return np.hstack([rotate, (np.array([size / 2, size / 2]) - rotate @ centre)[:, None]])
