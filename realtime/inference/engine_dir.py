"""Where built engines live, and whether that folder may be trusted with native code.

An engine (AOTInductor package, TensorRT engine, Inductor cache) is code the process loads and
runs. So the default folder is the user's own cache (``~/.cache/realtime/engines``, moved by
``$REALTIME_CACHE``), never the current folder, and a folder that other users can write to is
refused, the sticky bit or not (it stops them deleting others' files, not adding their own):
whatever they put there would run inside ``realtime run``. Every file in the folder must be this
user's (or root's) and writable by no one else, so a manifest or engine planted while the folder
was open is refused too.
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


def _foreign(info: os.stat_result, me: int | None) -> bool:
    return me is not None and info.st_uid not in (me, 0)


def _writable_by_others(info: os.stat_result) -> bool:
    return bool(info.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def check_engines_dir(path: Path) -> None:
    """Raise ModelError when ``path`` can be written by another user (group- or world-writable,
    with or without the sticky bit, or owned by someone other than this user or root), sits in a
    folder others can change without the sticky bit, or holds an entry (a symlink: and what it
    points to) owned by another user or writable by others. A missing folder holds nothing to
    load, so it passes."""
    me = os.geteuid() if hasattr(os, "geteuid") else None
    rebuild = f"or build engines into your own folder: --engines-dir {default_engines_dir()}"
    try:
        info = path.stat()
    except OSError:
        info = None
    if info is not None and (_writable_by_others(info) or _foreign(info, me)):
        sticky = " (the sticky bit stops others deleting files there, not adding them)" if info.st_mode & stat.S_ISVTX else ""
        raise ModelError(f"engine folder {path} can be written by other users{sticky}, so its engines could run their code", f"chmod go-w {path} (and own it), {rebuild}")
    try:
        parent = path.parent.stat()
    except OSError:
        parent = None
    if parent is not None and _writable_by_others(parent) and not parent.st_mode & stat.S_ISVTX:
        raise ModelError(f"engine folder {path} sits in {path.parent}, which other users can write to", f"use --engines-dir {default_engines_dir()}")
    if info is None or not stat.S_ISDIR(info.st_mode):
        return
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError as exc:
        raise ModelError(f"engine folder {path} cannot be listed ({exc.strerror})", f"make it readable, {rebuild}") from None
    for entry in entries:
        try:
            seen = [entry.stat(follow_symlinks=False)] + ([entry.stat()] if entry.is_symlink() else [])
        except OSError:
            continue  # a dangling link loads nothing
        owner = next((s.st_uid for s in seen if _foreign(s, me)), None)
        if owner is not None:
            raise ModelError(f"{entry.path} in the engine folder belongs to another user (uid {owner}), so it could run their code", f"remove it (rm {entry.path}) if you did not put it there, {rebuild}")
        if any(_writable_by_others(s) for s in seen):
            raise ModelError(f"{entry.path} in the engine folder can be written by other users, so it could run their code", f"chmod go-w {entry.path} if it is yours, else remove it, {rebuild}")
