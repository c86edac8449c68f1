"""What an operator changes while frames flow, held in one place: the options marked
``option(..., live=True)`` (the blend's and the swap's) and the swap choice (swap, show or blur the
faces; the identity every face wears and the one each tracked person wears; the generator; whether
the panel watches the input). One lock guards one frozen ``LiveState``, which the swap and blend
stages read once per frame, so a change lands on the next frame whole, never half-applied.

Every value is checked by its section's own ``__post_init__`` (``BlendConfig``'s, ``SwapConfig``'s,
``SwapChoice``'s), the same check a flag or a config file gets: the control panel and the controls
file write only through ``LiveSettings.update`` (and the per-track helpers beside it)."""

from __future__ import annotations

import dataclasses
import logging
import threading
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from realtime.choices import SwapMode
from realtime.config import BlendConfig, SwapConfig, coerce_section_values, load_toml
from realtime.errors import ConfigError
from realtime.options import live_fields

if TYPE_CHECKING:
    import torch

log = logging.getLogger("realtime")
LiveSection = Literal["blend", "swap"]  # config sections with live options
LIVE_SECTIONS: tuple[LiveSection, ...] = typing.get_args(LiveSection)
SWAP_MODES: tuple[SwapMode, ...] = typing.get_args(SwapMode)
CHOICE_FIELDS = ("mode", "default", "source_name", "generator", "input_preview")  # per_track: map_track/unmap_track
PREVIEW_WIDTH = 640  # the panel's views: the output and, while watched, the input


def preview_copy(frame: np.ndarray, width: int = PREVIEW_WIDTH) -> np.ndarray:
    """A copy of ``frame`` at most ``width`` wide, for the panel's views."""
    if frame.shape[1] <= width:
        return frame.copy()
    import cv2

    return cv2.resize(frame, (width, round(frame.shape[0] * width / frame.shape[1])), interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class SwapChoice:
    """Who wears what: read by the swap stage (identities, generator, input copies) and by the
    blend's face-safety guard (the privacy switch, the people who wear nothing)."""

    mode: SwapMode = "swap"
    # faces chosen live, as the identity encoder's embeddings (each generator makes its own identity of them)
    default: torch.Tensor | None = None  # None: the identity of --source
    per_track: Mapping[int, torch.Tensor | None] = field(default_factory=dict)  # None: this person wears nothing
    # bumped by every change the swap stage reads live (this choice and the live swap options): a
    # frame carries the version it was swapped under, and the swap's per-choice caches key on it
    version: int = 0
    source_name: str = "--source"
    generator: int = 0  # which of the generators prepared at start frames go through
    input_preview: bool = False  # keep a small copy of each input frame (someone watches it)

    def __post_init__(self) -> None:
        if self.mode not in SWAP_MODES:
            raise ConfigError(f"unknown swap mode {self.mode!r}", f"use one of {', '.join(SWAP_MODES)}")

    def wears_nothing(self, track_id: int) -> bool:
        return track_id in self.per_track and self.per_track[track_id] is None

    def identity_for(self, track_id: int, fallback: torch.Tensor | None) -> torch.Tensor | None:
        chosen = self.per_track.get(track_id)
        if chosen is not None:
            return chosen
        return self.default if self.default is not None else fallback


@dataclass(frozen=True)
class LiveState:
    """Everything live at one moment: a stage reads one per frame."""

    blend: BlendConfig
    swap: SwapConfig
    choice: SwapChoice


class LiveSettings:
    """The one thread-safe holder of the live settings, shared by the swap and blend stages, the
    control panel and the controls file."""

    def __init__(self, blend: BlendConfig | None = None, swap: SwapConfig | None = None) -> None:
        self._lock = threading.Lock()
        self._state = LiveState(blend or BlendConfig(), swap or SwapConfig(), SwapChoice())

    def now(self) -> LiveState:
        with self._lock:
            return self._state

    @property
    def blend(self) -> BlendConfig:
        return self.now().blend

    @property
    def swap(self) -> SwapConfig:
        return self.now().swap

    @property
    def choice(self) -> SwapChoice:
        return self.now().choice

    def update(self, section: LiveSection | Literal["choice"], **values: Any) -> LiveState:
        """Change live options of ``section`` ('blend', 'swap': values as a config file or JSON
        gives them) or the swap choice ('choice': any of CHOICE_FIELDS). ConfigError, and nothing
        changes, for a name that is not live or a value its section refuses."""
        with self._lock:
            state = self._state
            if section == "choice":
                _check_names("swap choice field(s)", values, CHOICE_FIELDS)
                self._state = dataclasses.replace(state, choice=_next(state.choice, **values))
            elif section in LIVE_SECTIONS:
                current = getattr(state, section)
                _check_names(f"{section} option(s)", values, live_fields(type(current)))
                changed = dataclasses.replace(current, **coerce_section_values(section, values))  # its __post_init__ checks
                choice = _next(state.choice) if section == "swap" else state.choice
                self._state = dataclasses.replace(state, **{section: changed}, choice=choice)
            else:
                raise ConfigError(f"nothing named {section!r} changes live", f"use one of {', '.join((*LIVE_SECTIONS, 'choice'))}")
            return self._state

    def map_track(self, track_id: int, identity: torch.Tensor | None) -> LiveState:
        """``track_id`` wears ``identity`` (None: nothing, the person is shown as they are)."""
        with self._lock:
            choice = self._state.choice
            self._state = dataclasses.replace(self._state, choice=_next(choice, per_track={**choice.per_track, track_id: identity}))
            return self._state

    def unmap_track(self, track_id: int) -> LiveState:
        """``track_id`` wears the default again."""
        with self._lock:
            choice = self._state.choice
            per_track = {k: v for k, v in choice.per_track.items() if k != track_id}
            self._state = dataclasses.replace(self._state, choice=_next(choice, per_track=per_track))
            return self._state


def _check_names(what: str, values: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ConfigError(f"{what} {', '.join(unknown)} cannot change live", f"live options: {', '.join(allowed)}")


def _next(choice: SwapChoice, **changes: Any) -> SwapChoice:
    return dataclasses.replace(choice, version=choice.version + 1, **changes)


class ControlsFileWatcher:
    """Re-reads a TOML file's ``[blend]`` options whenever it changes (called about once a second)."""

    def __init__(self, path: Path, settings: LiveSettings) -> None:
        self.path = path
        self.settings = settings
        self._mtime: float | None = None

    def poll(self) -> bool:
        """Apply the file if it changed; True when it did. A bad edit (a wrong value, a pipe in its
        place, a file too large) is rejected with one log line and the settings stay as they were."""
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return False
        if mtime == self._mtime:
            return False
        self._mtime = mtime
        live = live_fields(BlendConfig)
        try:
            values = load_toml(self.path, "controls file").get("blend", {})
            blend = self.settings.update("blend", **{k: v for k, v in values.items() if k in live}).blend
        except (ConfigError, TypeError, ValueError) as exc:
            log.warning("ignoring %s: %s", self.path, exc)
            return False
        log.info("blend settings from %s: %s", self.path, {k: getattr(blend, k) for k in live})
        return True
