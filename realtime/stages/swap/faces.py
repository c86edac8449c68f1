"""The faces a generator wears: the --source photo (found and embedded once, at set-up) and faces
chosen while frames flow (embedded on the caller's thread). Embeddings are the identity
encoder's; each generator turns one into its own identity (``identity_for``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from realtime.config import DetectConfig, SwapConfig
from realtime.errors import ConfigError
from realtime.inference.spec import GeneratorSpec
from realtime.photo import embed_face, find_one_face, load_identity_encoder, read_image
from realtime.vision.align import apply_affine, crop_from_frame_matrix, warp_crop
from realtime.vision.landmarks import five_points


class SourceFaces:
    def __init__(self, config: SwapConfig, detect: DetectConfig) -> None:
        self.config = config
        self.detect = detect
        self._encoder: torch.nn.Module | None = None  # loaded once, on first use
        self._source: tuple[np.ndarray, np.ndarray, torch.Tensor] | None = None

    def embed(self, image: np.ndarray, landmarks: np.ndarray) -> torch.Tensor:
        """The identity encoder's embedding of the face with ``landmarks`` in ``image``."""
        if self._encoder is None:
            self._encoder = load_identity_encoder(Path(self.config.identity_encoder or ""))
        return embed_face(image, landmarks, self._encoder).reshape(-1).float()

    def source(self, wanted_by: str) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
        """The --source photo, its face's landmarks and embedding (``wanted_by``: the generator,
        for the message when either flag is missing)."""
        if not self.config.source or not self.config.identity_encoder:
            raise ConfigError(f"the {wanted_by} generator needs --source IMAGE and --identity-encoder PATH", "add both: the face to wear and the encoder that embeds it")
        if self._source is None:
            image, landmarks = self.photo(wanted_by)
            self._source = (image, landmarks, self.embed(image, landmarks))
        return self._source

    def photo(self, wanted_by: str) -> tuple[np.ndarray, np.ndarray]:
        """The --source photo and its face's landmarks: all a generator that wears the photo's own
        pixels (a reenactment refiner) needs; no identity encoder."""
        if not self.config.source:
            raise ConfigError(f"the {wanted_by} generator needs --source IMAGE", "add the photo of the face to wear")
        path = Path(self.config.source)
        if self.config.source == "demo":
            from realtime.io.demo import demo_source_path

            path = demo_source_path()
        image = read_image(path)
        return image, find_one_face(image, self.detect, "source", path)

    @staticmethod
    def crop_and_points(image: np.ndarray, landmarks: np.ndarray, spec: GeneratorSpec) -> tuple[np.ndarray, np.ndarray]:
        """The face cropped as ``spec`` crops faces, and its landmarks in that crop."""
        matrix = crop_from_frame_matrix(five_points(landmarks), spec.crop_size, spec.template)
        return warp_crop(image, matrix, spec.crop_size), apply_affine(matrix, landmarks)

    def portrait_crop(self, spec: GeneratorSpec) -> np.ndarray:
        """The built-in portrait cropped as ``spec`` crops faces: a real face for generators that
        take no source (their precision check still needs one)."""
        from realtime.io.demo import demo_source_path

        image = read_image(demo_source_path())
        return self.crop(image, find_one_face(image, self.detect, "built-in", demo_source_path()), spec)

    @staticmethod
    def crop(image: np.ndarray, landmarks: np.ndarray, spec: GeneratorSpec) -> np.ndarray:
        return warp_crop(image, crop_from_frame_matrix(five_points(landmarks), spec.crop_size, spec.template), spec.crop_size)

    @staticmethod
    def identity_for(embedding: torch.Tensor, spec: GeneratorSpec) -> torch.Tensor:
        """What ``spec`` takes for an encoder embedding (its identity head, for users' ONNX models)."""
        if spec.identity_head is None:
            return embedding
        with torch.inference_mode():
            return spec.identity_head(embedding[None].float())[0]
