"""Design b's warp alone, as a swap stage for the face report: the --source photo's own pixels
carried onto each face's pose (``vision.reenact``), with no refinement network. It measures how
much identity the photo itself carries before anything is trained, and what a refiner must fix
(lighting, seams, the photo's expression). Not a product path: the pipeline's own stages run
around it, so the face report measures it exactly as it measures a generator."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from realtime.bundle import Face, FrameBundle
from realtime.live import SwapChoice
from realtime.stages.swap import SwapStage
from realtime.vision.align import apply_affine
from realtime.vision.reenact import reenact


class ReenactSwapStage(SwapStage):
    """The swap stage with its generator replaced by the reenactment warp (host path, any batch).
    The loaded generator still sets the crop size and the --source photo is read as usual."""

    def setup(self) -> None:
        super().setup()
        assert self.spec is not None
        self.source_image, self.source_landmarks, _ = self.sources.source(self.spec.architecture)

    def _swap_batch(self, bundle: FrameBundle, faces: list[Face], batch: int, choice: SwapChoice | None = None) -> None:
        assert self.spec is not None
        size = self.spec.crop_size
        crops, masks = [], []
        for face in faces:
            warped, mask = reenact(self.source_image, self.source_landmarks, apply_affine(face.crop_from_frame, face.landmarks), size)
            crops.append(warped)
            masks.append(mask)
        self._store(faces, torch.from_numpy(np.stack(crops)), torch.from_numpy(np.stack(masks)), on_device=False)


@contextmanager
def swap_stage_replaced_by_reenactment() -> Iterator[None]:
    """Inside: the pipeline builds ``ReenactSwapStage`` where it builds its swap stage."""
    import realtime.stages.swap as package

    original: Any = package.SwapStage
    setattr(package, "SwapStage", ReenactSwapStage)  # noqa: B010 (a module attribute swapped for a while, on purpose)
    try:
        yield
    finally:
        setattr(package, "SwapStage", original)  # noqa: B010
