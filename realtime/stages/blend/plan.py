"""Where each face's blend goes this frame: its box of the frame, grown to a region shape that
CUDA graphs are built for (``bucket_box``, ``region_sizes``), and the per-frame inputs of its
``region.blend_region`` (``plan_face``), from the face on the record and the live settings.

Apart from ``region``: the fused kernels' fingerprint follows ``region``'s imports, and the record
and the config (a help text, a new option) are no part of the maths they hold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from realtime.bundle import Face
from realtime.config import BlendConfig
from realtime.stages.blend.region import RegionShape, pack_params, params_size
from realtime.vision.align import apply_affine, box_of, shift_affine
from realtime.vision.colour import STATS_STEP
from realtime.vision.masks_torch import mask_holes, mask_sizes


def bucket_box(box: tuple[int, int, int, int], width: int, height: int, multiple: int = 64) -> tuple[int, int, int, int]:
    """``box`` grown to a square whose side is a multiple of ``multiple`` (clipped to the frame's
    own size) and moved, if need be, to stay inside the frame: a face that moves or grows a little
    keeps the same region shape, so the same CUDA graph. Square, so a face's shape depends on one
    number (its size), not on two: fewer shapes, all of which ``region_sides`` can build ahead."""
    x0, y0, x1, y1 = box
    side = -(-max(x1 - x0, y1 - y0) // multiple) * multiple
    w, h = min(side, width), min(side, height)
    x0, y0 = min(x0, width - w), min(y0, height - h)
    return x0, y0, x0 + w, y0 + h


def region_sizes(width: int, height: int, *, smallest: int = 128, largest: int = 1024, multiple: int = 64) -> list[tuple[int, int]]:
    """The (height, width) region shapes ``bucket_box`` gives for faces whose box side lies between
    ``smallest`` and ``largest`` pixels in a ``width``×``height`` frame: the shapes worth building
    before frames flow (a webcam face is 150–600 px at 1080p)."""
    sides = range(smallest, largest + 1, multiple)
    return sorted({(min(side, height), min(side, width)) for side in sides})


@dataclass(frozen=True)
class FacePlan:
    """Where one face goes this frame and the per-frame inputs of its ``blend_region``."""

    box: tuple[int, int, int, int]
    shape: RegionShape
    landmarks_in_crop: np.ndarray
    sizes: tuple[float, float, float]
    opacity: float
    colour_weight: float
    crop_from_region: np.ndarray
    region_from_small: np.ndarray
    detail: float = 0.0

    def pack(self, out: np.ndarray | None = None) -> np.ndarray:
        buffer = np.empty(params_size(self.shape.points), np.float32) if out is None else out
        return pack_params(buffer, self.landmarks_in_crop, self.sizes, self.opacity, self.colour_weight, self.crop_from_region, self.region_from_small, self.detail)


def plan_face(face: Face, width: int, height: int, settings: BlendConfig, *, has_mask: bool, colour_weight: float) -> FacePlan | None:
    """Where one face goes in a ``width``×``height`` frame this time, and the per-frame inputs of
    its ``blend_region`` (None when its crop misses the frame): pure, from the face and settings."""
    box = box_of(face.frame_from_crop, face.crop_size, width, height)
    if box is None:
        return None
    x0, y0, x1, y1 = bucket_box(box, width, height)
    landmarks_in_crop = apply_affine(face.crop_from_frame, face.landmarks)
    shape = RegionShape(y1 - y0, x1 - x0, face.crop_size, len(landmarks_in_crop), mask_holes(settings.keep_mouth, settings.keep_eyes), has_mask, settings.colour != "off")
    crop_from_region = shift_affine(face.crop_from_frame, x0, y0)
    region_from_small = face.frame_from_crop.astype(np.float64)  # a copy, made frame_from_small:
    region_from_small[:, :2] *= STATS_STEP  # a small-grid pixel is STATS_STEP crop pixels,
    region_from_small[:, 2] -= (x0, y0)  # then moved into the region
    return FacePlan(
        (x0, y0, x1, y1), shape, landmarks_in_crop, mask_sizes(landmarks_in_crop, settings.erode, settings.blur),
        settings.opacity * face.alpha, colour_weight, crop_from_region, region_from_small, settings.detail,
    )
