"""Blend settings that change while frames flow: a thread-safe holder read once per frame, and a
watcher that applies a TOML file's ``[blend]`` section whenever it changes."""

from __future__ import annotations

import dataclasses
import logging
import threading
from pathlib import Path
from typing import Any

from realtime.config import BlendConfig, coerce_section_values, load_toml
from realtime.errors import ConfigError

log = logging.getLogger("realtime")
LIVE_FIELDS = ("erode", "blur", "colour", "colour_smoothing_s", "keep_mouth", "keep_eyes", "opacity", "detail")


class BlendControls:
    """Blend settings that other threads may change while frames flow (thread-safe)."""

    def __init__(self, config: BlendConfig) -> None:
        self._lock = threading.Lock()
        self._config = config

    def snapshot(self) -> BlendConfig:
        with self._lock:
            return self._config

    def update(self, **changes: Any) -> BlendConfig:
        unknown = set(changes) - set(LIVE_FIELDS)
        if unknown:
            raise ConfigError(f"blend option(s) {', '.join(sorted(unknown))} cannot change live", f"live options: {', '.join(LIVE_FIELDS)}")
        with self._lock:
            self._config = dataclasses.replace(self._config, **changes)  # validates, or raises ConfigError
            return self._config


class ControlsFileWatcher:
    """Re-reads a TOML file of blend options whenever it changes (called about once a second)."""

    def __init__(self, path: Path, controls: BlendControls) -> None:
        self.path = path
        self.controls = controls
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
        try:
            values = load_toml(self.path, "controls file").get("blend", {})
            changes = coerce_section_values("blend", {k: v for k, v in values.items() if k in LIVE_FIELDS})
            self.controls.update(**changes)
        except (ConfigError, TypeError, ValueError) as exc:
            log.warning("ignoring %s: %s", self.path, exc)
            return False
        log.info("blend settings from %s: %s", self.path, {k: getattr(self.controls.snapshot(), k) for k in LIVE_FIELDS})
        return True
