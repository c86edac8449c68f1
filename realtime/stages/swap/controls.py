"""What a live operator changes in the swap while frames flow: whether faces are swapped (or shown
as they are, or blurred: a privacy switch), the identity every face wears by default, and the one
each tracked person wears (or none). One immutable ``SwapChoice`` is read per frame, so a change
lands on the next frame whole, never half-applied; the swap and blend stages share one holder."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

import numpy as np

from realtime.config import MAX_STEADY

if TYPE_CHECKING:
    import torch

SwapMode = Literal["swap", "original", "blur"]
PREVIEW_WIDTH = 640  # the panel's views: the output and, while watched, the input


def preview_copy(frame: np.ndarray, width: int = PREVIEW_WIDTH) -> np.ndarray:
    """A copy of ``frame`` at most ``width`` wide, for the panel's views."""
    if frame.shape[1] <= width:
        return frame.copy()
    import cv2

    return cv2.resize(frame, (width, round(frame.shape[0] * width / frame.shape[1])), interpolation=cv2.INTER_AREA)
SWAP_MODES: tuple[SwapMode, ...] = ("swap", "original", "blur")


@dataclass(frozen=True)
class SwapChoice:
    mode: SwapMode = "swap"
    # faces chosen live, as the identity encoder's embeddings (each generator makes its own identity of them)
    default: torch.Tensor | None = None  # None: the identity of --source
    per_track: Mapping[int, torch.Tensor | None] = field(default_factory=dict)  # None: this person wears nothing
    version: int = 0
    source_name: str = "--source"
    generator: int = 0  # which of the generators prepared at start frames go through
    input_preview: bool = False  # keep a small copy of each input frame (someone watches it)
    steady: float | None = None  # the steady average's weight set live; None: the run's --steady

    def wears_nothing(self, track_id: int) -> bool:
        return track_id in self.per_track and self.per_track[track_id] is None

    def identity_for(self, track_id: int, fallback: torch.Tensor | None) -> torch.Tensor | None:
        chosen = self.per_track.get(track_id)
        if chosen is not None:
            return chosen
        return self.default if self.default is not None else fallback


class SwapControls:
    """Thread-safe holder of the current ``SwapChoice``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._choice = SwapChoice()

    def snapshot(self) -> SwapChoice:
        with self._lock:
            return self._choice

    def _change(self, **changes: object) -> SwapChoice:
        with self._lock:
            self._choice = replace(self._choice, version=self._choice.version + 1, **changes)  # type: ignore[arg-type]
            return self._choice

    def set_mode(self, mode: SwapMode) -> SwapChoice:
        if mode not in SWAP_MODES:
            raise ValueError(f"unknown swap mode {mode!r}: use one of {', '.join(SWAP_MODES)}")
        return self._change(mode=mode)

    def set_input_preview(self, on: bool) -> SwapChoice:
        return self._change(input_preview=on)

    def set_steady(self, weight: float) -> SwapChoice:
        """A still face's crop averaged with its previous one with ``weight`` (0: off), as --steady."""
        if not 0.0 <= weight <= MAX_STEADY:
            raise ValueError(f"steady {weight} is out of range: use 0 (off) to {MAX_STEADY}")
        return self._change(steady=float(weight))

    def set_generator(self, index: int) -> SwapChoice:
        return self._change(generator=index)

    def set_default(self, identity: torch.Tensor, name: str) -> SwapChoice:
        return self._change(default=identity, source_name=name)

    def map_track(self, track_id: int, identity: torch.Tensor | None) -> SwapChoice:
        """``track_id`` wears ``identity`` (None: nothing, the person is shown as they are)."""
        with self._lock:
            per_track = {**self._choice.per_track, track_id: identity}
        return self._change(per_track=per_track)

    def unmap_track(self, track_id: int) -> SwapChoice:
        """``track_id`` wears the default again."""
        with self._lock:
            per_track = {k: v for k, v in self._choice.per_track.items() if k != track_id}
        return self._change(per_track=per_track)
