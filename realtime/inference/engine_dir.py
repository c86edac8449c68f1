"""Where built engines live, and whether that folder may be trusted with native code.

An engine (AOTInductor package, TensorRT engine, Inductor cache) is code the process loads and
runs. So the default folder is the user's own cache (``~/.cache/realtime/engines``, moved by
``$REALTIME_CACHE``), never the current folder, and a folder that other users can write to is
refused: whatever they put there would run inside ``realtime run``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from realtime.errors import ModelError
from realtime.models.weights import cache_dir

AUTO = "auto"


def default_engines_dir() -> Path:
    return cache_dir() / "engines"


def resolve_engines_dir(value: str | Path) -> Path:
    """``auto`` → the user's cache; anything else as given."""
    return default_engines_dir() if str(value) == AUTO else Path(value)


def check_engines_dir(path: Path) -> None:
    """Raise ModelError when ``path`` (or the folder holding it) can be written by another user:
    group- or world-writable without the sticky bit, or owned by someone other than this user or
    root. A missing folder holds nothing to load, so it passes."""
    me = os.geteuid() if hasattr(os, "geteuid") else None
    for folder in (path, path.parent):
        try:
            info = folder.stat()
        except OSError:
            continue
        shared = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not info.st_mode & stat.S_ISVTX
        foreign = me is not None and info.st_uid not in (me, 0)
        if folder == path and (shared or foreign):
            raise ModelError(
                f"engine folder {path} can be written by other users, so its engines could run their code",
                f"chmod go-w {path} (and own it), or build engines into your own folder: --engines-dir {default_engines_dir()}",
            )
        if folder != path and shared:
            raise ModelError(f"engine folder {path} sits in {folder}, which other users can write to", f"use --engines-dir {default_engines_dir()}")
