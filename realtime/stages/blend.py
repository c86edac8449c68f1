"""BlendStage: generated crops back into the frame, over each face's box only.

Reads ``frame`` and, per face, ``swapped_crop``, ``swapped_mask``, ``landmarks``,
``frame_from_crop``, ``alpha``. Writes ``frame`` (a new array; the captured frame is kept intact
for anything that still reads it). The mask is the feathered face-mesh oval, built in crop space,
times the generator's own mask when it has one, times the track's fade.
"""

from __future__ import annotations

from dataclasses import dataclass

from realtime.bundle import FrameBundle
from realtime.pipeline.stage import Stage
from realtime.vision.align import apply_affine
from realtime.vision.composite import paste_crop
from realtime.vision.masks import face_oval_mask


@dataclass(frozen=True)
class BlendOptions:
    erode: float = 0.05  # of the inter-ocular distance
    blur: float = 0.12
    opacity: float = 1.0


class BlendStage(Stage):
    name = "blend"

    def __init__(self, options: BlendOptions = BlendOptions()) -> None:
        self.options = options

    def process(self, bundle: FrameBundle) -> FrameBundle:
        frame = bundle.frame
        for face in bundle.faces:
            if face.swapped_crop is None or face.alpha <= 0:
                continue
            landmarks_in_crop = apply_affine(face.crop_from_frame, face.landmarks)
            mask = face_oval_mask(landmarks_in_crop, face.crop_size, erode=self.options.erode, blur=self.options.blur)
            if face.swapped_mask is not None:
                mask = mask * face.swapped_mask
            frame = paste_crop(frame, face.swapped_crop, mask, face.frame_from_crop, opacity=self.options.opacity * face.alpha)
        bundle.frame = frame
        return bundle
