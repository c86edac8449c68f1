"""A face in a photo: read a still, find its faces, embed one face's identity. What the live swap
stage needs from its ``--source`` photo, and what ``swap-image``, ``eval-swap`` and ``prepare-faces``
use on stills; below the stages, which import it.

torch is imported where it is used: ``landmarker_options`` is read by the detect stage, which a
run without a generator (``realtime track``) loads without torch."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from realtime.bundle import Detection
from realtime.config import DetectConfig
from realtime.errors import SourceError
from realtime.models.landmarker import LandmarkerOptions
from realtime.vision.align import crop_from_frame_matrix, template_points
from realtime.vision.landmarks import five_points

if TYPE_CHECKING:
    import torch

IDENTITY_CROP = 112


def read_image(path: Path) -> np.ndarray:
    """An image file as H×W×3 uint8 RGB; SourceError with a fix when it is not one."""
    import cv2

    if not path.is_file():
        raise SourceError(f"image {path} does not exist", "check the path")
    bgr = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SourceError(f"{path} is not a readable image", "use a JPEG or PNG file")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def load_identity_encoder(path: Path) -> torch.nn.Module:
    """Our identity encoder checkpoint (unit-norm embeddings), or a user's ArcFace ONNX (its raw
    embedding: the generator's identity head turns it into what that generator takes)."""
    from realtime.models.formats import detect_model_format

    if detect_model_format(path, "identity encoder") == "onnx":  # by content, not by name
        from realtime.byo.swapper import load_identity_encoder_onnx

        return load_identity_encoder_onnx(path)
    from realtime.models.checkpoint import load_checkpoint

    encoder, _ = load_checkpoint(path, expect="identity_encoder")
    return encoder


def embed_source_face(image: np.ndarray, landmarks: np.ndarray, encoder_path: Path) -> torch.Tensor:
    """The identity embedding of the face with ``landmarks`` in ``image``."""
    return embed_face(image, landmarks, load_identity_encoder(encoder_path))


def embed_face(image: np.ndarray, landmarks: np.ndarray, encoder: torch.nn.Module) -> torch.Tensor:
    """The unit-norm embedding by a loaded identity ``encoder`` of the face with ``landmarks``."""
    import torch

    from realtime.inference.spec import to_generator

    height, width = cast("tuple[int, int]", encoder.input_size)
    template = template_points(IDENTITY_CROP)
    template[:, 0] -= (IDENTITY_CROP - width) / 2  # narrower inputs (112×96) keep the face centred
    crop_from_image = crop_from_frame_matrix(five_points(landmarks), IDENTITY_CROP)
    crop_from_image[0, 2] -= (IDENTITY_CROP - width) / 2
    import cv2

    crop = cv2.warpAffine(image, crop_from_image, (width, height), flags=cv2.INTER_LINEAR)
    with torch.inference_mode():
        return encoder(to_generator(crop[None]))[0]  # our encoders take the generators' pixels


def landmarker_options(config: DetectConfig) -> LandmarkerOptions:
    return LandmarkerOptions(
        max_faces=config.max_faces,
        min_detection_confidence=config.min_detection_confidence,
        min_presence_confidence=config.min_presence_confidence,
        min_tracking_confidence=config.min_tracking_confidence,
        blendshapes=config.blendshapes,
        head_pose=config.head_pose,
        max_side=config.detect_max_side,
    )


def detect_faces_in_image(image: np.ndarray, detect: DetectConfig) -> list[Detection]:
    """Every face the landmarker finds in a still image (a short-lived graph of its own)."""
    from realtime.models.landmarker import FaceLandmarkerModel
    from realtime.models.weights import resolve_face_landmarker

    model = FaceLandmarkerModel(resolve_face_landmarker(Path(detect.landmarker_model) if detect.landmarker_model else None), landmarker_options(detect))
    try:
        return model.detect(image, 0.0)
    finally:
        model.close()


def find_one_face(image: np.ndarray, detect: DetectConfig, what: str, path: Path) -> np.ndarray:
    """Landmarks of the largest face in a still image."""
    detections = detect_faces_in_image(image, detect)
    if not detections:
        raise SourceError(f"no face found in the {what} image {path}", "use a clear photo where the face is at least 60 pixels wide")
    return max(detections, key=lambda d: np.ptp(d.landmarks[:, 0])).landmarks
