"""The face-safety policy: what the viewer sees where a face could not be swapped.

A face is left unswapped when it is new (tentative: not yet confirmed by the tracker), lost (the
detector has missed it past the coast time), over ``--max-faces``, or when the swap or blend failed
on its frame. Under 'reveal' the real face shows (today's fade). Under 'blur' and 'pixelate' its box
is covered. Under 'hold' the face's last swap is pasted again along the track's predicted motion
for at most ``--cover-lost-s``, and a face with no swap to hold is blurred.

Faces over ``--max-faces`` (marked ``other`` by the swap stage) follow ``--others``: 'cover' treats
them as any unswapped face, 'reveal' leaves them as they are. A ``blind`` frame (a cut whose new
faces the detector has not reported yet) is covered whole under a covering policy.

``FaceGuard`` only decides (``plan``) and remembers (``remember``, ``forget``); the blend stage
draws what it decides, so the decision is testable without pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from realtime.bundle import Face, FrameBundle
from realtime.choices import CoverAction, CoverMode

if TYPE_CHECKING:
    import numpy as np
    import torch

Action = CoverAction
# stages whose failure leaves a frame's faces unswapped: the guard covers every face the frame has
SWAP_STAGES = ("swap", "blend")


@dataclass
class HeldSwap:
    """A face's last generated crop (host array or GPU tensor), its mask and when it was made."""

    crop: np.ndarray | torch.Tensor
    mask: np.ndarray | torch.Tensor | None
    t_s: float


@dataclass(frozen=True)
class Cover:
    face: Face
    action: Action
    held: HeldSwap | None = None


class FaceGuard:
    def __init__(self, policy: str, hold_s: float, others: str = "cover") -> None:
        if policy not in ("reveal", "hold", "blur", "pixelate"):
            raise ValueError(f"unknown face-safety policy {policy!r}")
        if others not in ("swap", "cover", "reveal"):
            raise ValueError(f"unknown --others choice {others!r}")
        self.policy = policy
        self.hold_s = hold_s
        self.others = others
        self._held: dict[int, HeldSwap] = {}
        self._last_faces: list[Face] = []
        self.covered: dict[str, int] = {"hold": 0, "blur": 0, "pixelate": 0}
        self.others_covered = 0  # faces over --max-faces covered (face × frame)
        self.others_revealed = 0
        self.frames_covered_whole = 0

    @property
    def active(self) -> bool:
        return self.policy != "reveal"

    def frame_cover(self, bundle: FrameBundle) -> CoverMode | None:
        """How to cover the whole of a ``blind`` frame (None: it is not blind, or nothing covers)."""
        if not bundle.blind or not self.active:
            return None
        return "pixelate" if self.policy == "pixelate" else "blur"

    def faces_at_risk(self, bundle: FrameBundle) -> list[Face]:
        """Every face on the frame that the blend has not composited. When the track stage failed
        the frame has no faces of its own: the last frame's faces stand in for them."""
        faces = [*bundle.faces, *bundle.tentative_faces]
        if not faces and "track" in bundle.failed_stages:
            return list(self._last_faces)  # blended on their own frame, not on this one
        return [face for face in faces if not face.blended]

    def plan(self, bundle: FrameBundle) -> list[Cover]:
        """What to draw over each unswapped face of ``bundle`` (nothing under 'reveal')."""
        covers = []
        for face in self.faces_at_risk(bundle):
            if face.other and self.others != "cover":
                self.others_revealed += self.others == "reveal"
                continue
            if not self.active:
                if face.other:  # --others cover under 'reveal': a passer-by is still covered
                    covers.append(Cover(face, "blur"))
                continue
            if self.policy != "hold":
                covers.append(Cover(face, self.policy))  # type: ignore[arg-type]
                continue
            held = self._held.get(face.track_id)
            if held is not None and bundle.media_time_s - held.t_s <= self.hold_s and face.state != "tentative":
                covers.append(Cover(face, "hold", held))
            else:
                covers.append(Cover(face, "blur"))
        return covers

    def remember(self, bundle: FrameBundle) -> None:
        """Keep each blended face's swap (a reference, not a copy) for 'hold', and the frame's faces."""
        if bundle.faces or bundle.tentative_faces or "track" not in bundle.failed_stages:
            self._last_faces = [*bundle.faces, *bundle.tentative_faces]
        if self.policy != "hold":
            return
        for face in bundle.faces:
            if face.blended and face.swapped is not None:
                self._held[face.track_id] = HeldSwap(face.swapped.crop, face.swapped.mask, bundle.media_time_s)

    def forget(self, live_ids: set[int]) -> None:
        """Drop held swaps of tracks that ended (a cut ends them all)."""
        for track_id in [t for t in self._held if t not in live_ids]:
            del self._held[track_id]

    def count(self, covers: list[Cover]) -> None:
        for cover in covers:
            self.covered[cover.action] += 1
            self.others_covered += cover.face.other
