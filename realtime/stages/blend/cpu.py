"""The CPU blender (OpenCV): a generated crop pasted over each face's box through a feathered mask,
its colour matched in LAB. The same two-method shape as the GPU blender: ``composite(frame, faces,
t_s, settings)`` and ``forget(live_ids)``; ``paste`` is one face, also what 'hold' pastes again."""

from __future__ import annotations

import numpy as np

from realtime.bundle import Face
from realtime.config import BlendConfig
from realtime.vision.align import apply_affine, warp_crop
from realtime.vision.colour import STATS_STEP, ColourSmoother, ColourStats, from_lab, masked_stats, to_lab, transfer
from realtime.vision.composite import paste_crop
from realtime.vision.masks import face_mask


class CpuBlender:
    def __init__(self) -> None:
        self.target_colour = ColourSmoother(0.0)

    def forget(self, live_ids: set[int]) -> None:
        """Drop the colour state of tracks that ended."""
        self.target_colour.forget(live_ids)

    def composite(self, frame: np.ndarray, faces: list[Face], t_s: float, settings: BlendConfig) -> np.ndarray:
        """Blend each face's host crop into ``frame`` (in place, returned), marking it ``blended``."""
        for face in faces:
            assert face.swapped is not None  # the stage blends swapped faces only
            swapped = face.swapped.host()  # the stage brought every crop to the host: no copy here
            self.paste(frame, face, swapped.crop, swapped.mask, t_s, settings, opacity=settings.opacity * face.alpha, detail=settings.detail)
            face.blended = True
        return frame

    def paste(self, frame: np.ndarray, face: Face, crop: np.ndarray, generator_mask: np.ndarray | None, t_s: float, settings: BlendConfig, *, opacity: float, detail: float = 0.0) -> None:
        """One face: its mask from the smoothed landmarks (times the generator's), colour, paste
        with ``detail`` of the frame's own fine texture."""
        mask = face_mask(apply_affine(face.crop_from_frame, face.landmarks), face.crop_size, erode=settings.erode, blur=settings.blur, keep_mouth=settings.keep_mouth, keep_eyes=settings.keep_eyes)
        if generator_mask is not None:
            mask = mask * generator_mask
        if settings.colour != "off":
            crop = self._match_colour(frame, face, crop, mask, t_s, settings)
        paste_crop(frame, crop, mask, face.frame_from_crop, opacity=opacity, detail=detail, out=frame)

    def _smooth(self, face: Face, t_s: float, target: ColourStats, settings: BlendConfig) -> ColourStats:
        """'smoothed' mode: the target's statistics follow the lighting slowly, per track, so a
        mouth opening or sensor noise does not pump the colour. The generated crop's statistics
        stay per frame: they must cancel the generator's own frame-to-frame colour wobble."""
        if settings.colour != "smoothed":
            return target
        self.target_colour.time_constant_s = settings.colour_smoothing_s
        return self.target_colour.update(face.track_id, t_s, target)

    def _match_colour(self, frame: np.ndarray, face: Face, crop: np.ndarray, mask: np.ndarray, t_s: float, settings: BlendConfig) -> np.ndarray:
        step = STATS_STEP
        small = face.crop_size // step
        original = warp_crop(frame, face.crop_from_frame / step, small)
        small_mask = mask[step // 2 :: step, step // 2 :: step]
        generated_lab = to_lab(crop)
        target = masked_stats(to_lab(original), small_mask)
        source = masked_stats(generated_lab[step // 2 :: step, step // 2 :: step], small_mask)
        if target is None or source is None:
            return crop
        return from_lab(transfer(generated_lab, source, self._smooth(face, t_s, target, settings)).astype(np.float32))
