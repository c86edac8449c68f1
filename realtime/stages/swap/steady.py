"""A steadier generated face on a still head: each track's generated crop is averaged with its
previous one, by how little the face moved inside the aligned crop.

The generator answers the camera's noise and the tracker's sub-pixel jitter with changes of its
own, so on a still head its face shimmers more than the camera's (measured on six 1080p clips:
up to 1.19× the input's frame-to-frame change). The aligned crop follows the head, so what moves
inside it is expression and out-of-plane turns, which the landmarks in crop coordinates show: the
average fades out as any landmark moves, and a blink, a word or a turn is drawn at once.

Only a track's own generated crops are averaged: never the camera's face. A new track, a track
seen again, another face or generator chosen, or a frame that took the other path (host or GPU)
starts afresh (the new face lands on its first frame). One ``smooth`` serves both paths: it runs on
the device the crop is on. A crop that is not averaged is passed on as it came."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from realtime.vision.align import apply_affine

STILL_CROP_PX = 3.0  # a landmark moving this far (crop pixels, frame to frame) turns the average off


def face_motion(before: np.ndarray, now: np.ndarray) -> float:
    """The largest distance any landmark moved between two (N, 2) sets, in their pixels."""
    if before.shape != now.shape:
        return float("inf")
    return float(np.sqrt(((now - before) ** 2).sum(axis=1)).max(initial=0.0))


def steady_weight(motion_px: float, strength: float, still_px: float = STILL_CROP_PX) -> float:
    """The previous crop's weight in the average: ``strength`` for a face that did not move, falling
    linearly to 0 at ``still_px`` of landmark motion."""
    if strength <= 0.0 or not np.isfinite(motion_px):
        return 0.0
    return strength * float(np.clip(1.0 - motion_px / still_px, 0.0, 1.0))


# the average's arithmetic: float16 on a GPU (half the memory traffic), float32 on the host (exact
# to the uint8 it rounds to, and fast there)
_WORK_DTYPE = {"cuda": torch.float16}


@dataclass
class _Track:
    landmarks: np.ndarray  # in crop pixels, this frame's
    crop: torch.Tensor  # the crop last shown, (S, S, 3) in the work type of its device


class SteadyCrops:
    """Per-track memory of the crop last shown; ``smooth`` averages a new one into it."""

    def __init__(self, strength: float, still_px: float = STILL_CROP_PX) -> None:
        self.strength = strength
        self.still_px = still_px
        self._tracks: dict[int, _Track] = {}
        self._key: object = None
        self.averaged = 0  # crops that were averaged (a weight above 0), for the run report

    def reset(self) -> None:
        """Forget every track: another face or generator is worn from the next crop on."""
        self._tracks.clear()

    def start_frame(self, key: object, track_ids: set[int]) -> None:
        """Forget every track when ``key`` (the operator's choice of faces) changed, and tracks not
        on this frame: a face seen again starts afresh."""
        if key != self._key:
            self.reset()
            self._key = key
        for track_id in [t for t in self._tracks if t not in track_ids]:
            del self._tracks[track_id]

    def smooth(self, track_id: int, landmarks: np.ndarray, crop_from_frame: np.ndarray, crop: torch.Tensor) -> torch.Tensor:
        """The (S, S, 3) uint8 crop to show for this track (``crop`` itself unless it was
        averaged), on ``crop``'s device and, on a GPU, its current stream; ``landmarks`` in frame
        pixels, ``crop_from_frame`` the crop's alignment. A host crop is a CPU tensor (a NumPy
        array's, without a copy)."""
        if self.strength <= 0.0:
            return crop  # off: no copy, no memory
        current = crop.to(_WORK_DTYPE.get(crop.device.type, torch.float32))
        in_crop = apply_affine(crop_from_frame, landmarks[:, :2])
        track = self._tracks.get(track_id)
        self._tracks[track_id] = _Track(in_crop, current)
        if track is None or track.crop.shape != current.shape or track.crop.device != current.device:
            return crop  # nothing to average with: a new track, or one the other path (host or GPU) made
        weight = steady_weight(face_motion(track.landmarks, in_crop), self.strength, self.still_px)
        if weight <= 0.0:
            return crop
        self.averaged += 1
        current = torch.lerp(current, track.crop, weight)
        self._tracks[track_id].crop = current
        return current.round().clamp_(0, 255).to(torch.uint8)
