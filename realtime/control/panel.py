"""What the control panel can do to a running pipeline, independent of HTTP: choose the face to
wear (an uploaded photo, a gallery photo, a face in the frame), who wears what, the privacy
switch, the live options (the same validated path as the controls file), and the live numbers.
Identities are computed on the caller's thread (the server runs them off its event loop) and
land through the run's ``LiveSettings``: whole, on the next frame. The swap stage itself is only
asked for identities and read through its ``describe()``."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import numpy as np

from realtime.control.preview import PreviewSink
from realtime.errors import ConfigError, SinkError, SourceError
from realtime.live import LIVE_SECTIONS, LiveSettings, LiveState, SwapChoice
from realtime.options import live_fields
from realtime.pipeline.stats import StatsCollector

if TYPE_CHECKING:
    import torch

    from realtime.control.recording import RecordingSink

log = logging.getLogger("realtime")
MAX_UPLOAD_BYTES = 8 << 20
MAX_UPLOAD_PIXELS = 40_000_000  # a decompression bomb is refused before it is decoded
# What the face finder needs: the landmarker's detector looks at a photo at 128-256 px and the
# identity encoder at a 112 px crop, so 2048×2048 leaves any face it can find far more than enough.
# A sequential JPEG is decoded reduced (1/2, 1/4, 1/8: DCT scaling, the memory of the small image);
# a PNG, BMP or progressive JPEG is decoded whole before it can be shrunk, so it has a lower cap.
MAX_DECODE_PIXELS = 2048 * 2048
MAX_WHOLE_DECODE_PIXELS = 12_000_000  # a 12 Mpx phone photo as PNG: ~36 MB decoded (~75 MB peak)
DECODE_SLOTS = 2  # photos read and embedded at once; the others wait, then get 429
DECODE_WAIT_S = 5.0
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
REDUCED_READS = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
SEQUENTIAL_JPEG = (0xC0, 0xC1, 0xC9)  # start-of-frame markers libjpeg can decode scaled without the whole picture's coefficients


class PanelError(Exception):
    """A request the panel refuses, with the fix; ``status`` is the HTTP status it maps to."""

    def __init__(self, status: int, message: str, fix: str) -> None:
        super().__init__(f"{message}: {fix}")
        self.status, self.message, self.fix = status, message, fix


@dataclass(frozen=True)
class ImageHeader:
    """What an image file declares before it is decoded."""

    kind: str  # "JPEG", "PNG" or "BMP"
    width: int
    height: int
    reducible: bool  # decodable at 1/2, 1/4, 1/8 without the memory of the whole picture


def read_header(data: bytes) -> ImageHeader | None:
    """The kind and declared size of a JPEG, PNG or BMP, read before decoding (a small file can
    declare a huge picture); None for anything else."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return ImageHeader("PNG", int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"), False)
    if data[:2] == b"BM" and len(data) >= 26:
        width, height = (abs(int.from_bytes(data[at : at + 4], "little", signed=True)) for at in (18, 22))
        return ImageHeader("BMP", width, height, False)
    index = 2
    while data[:2] == b"\xff\xd8" and index + 9 < len(data):
        if data[index] != 0xFF:
            return None
        marker, length = data[index + 1], int.from_bytes(data[index + 2 : index + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start of frame
            width, height = int.from_bytes(data[index + 7 : index + 9], "big"), int.from_bytes(data[index + 5 : index + 7], "big")
            return ImageHeader("JPEG", width, height, marker in SEQUENTIAL_JPEG)
        index += 2 + length
    return None


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) a JPEG, PNG or BMP declares in its header."""
    header = read_header(data)
    return (header.width, header.height) if header is not None else None


def reduction_for(width: int, height: int) -> int:
    """The smallest of 1, 2, 4, 8 that brings ``width``×``height`` to at most MAX_DECODE_PIXELS
    (8 at most: past that, the pixel cap refuses the image)."""
    return next((r for r in (1, 2, 4) if -(-width // r) * -(-height // r) <= MAX_DECODE_PIXELS), 8)


def decode_image(data: bytes, what: str = "upload", max_bytes: int | None = MAX_UPLOAD_BYTES) -> np.ndarray:
    """Photo bytes as an RGB image of at most MAX_DECODE_PIXELS; PanelError for anything else
    (size, type, garbage). The header is checked before anything is decoded; a sequential JPEG
    is decoded reduced, anything else whole (so under a lower cap) and then shrunk."""
    if max_bytes is not None and len(data) > max_bytes:
        raise PanelError(413, f"the {what} is {len(data) >> 20} MiB", f"send a photo under {max_bytes >> 20} MiB")
    header = read_header(data)
    if header is None:
        raise PanelError(415, f"the {what} is not a JPEG, PNG or BMP image", "choose a photo file")
    width, height = header.width, header.height
    if width == 0 or height == 0:
        raise PanelError(400, f"the image declares {width}×{height} pixels (an empty picture)", "choose a photo with a face in it")
    if width * height > MAX_UPLOAD_PIXELS:
        raise PanelError(413, f"the image declares {width}×{height} pixels", "send an ordinary photo")
    reduction = reduction_for(width, height) if header.reducible else 1
    if not header.reducible and width * height > MAX_WHOLE_DECODE_PIXELS:
        kind = "progressive JPEG" if header.kind == "JPEG" else header.kind
        raise PanelError(413, f"a {kind} of {width}×{height} pixels is decoded whole ({width * height / 1e6:.1f} Mpx)", f"send it as an ordinary JPEG, or at most {MAX_WHOLE_DECODE_PIXELS / 1e6:.0f} Mpx")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), REDUCED_READS[reduction])
    if image is None:
        raise PanelError(415, f"the {what} could not be decoded as an image", "choose a JPEG or PNG photo")
    if image.shape[0] * image.shape[1] > MAX_DECODE_PIXELS:  # decoded whole (or bigger than declared): shrink it
        scale = (MAX_DECODE_PIXELS / (image.shape[0] * image.shape[1])) ** 0.5
        size = (max(1, int(image.shape[1] * scale)), max(1, int(image.shape[0] * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def gallery_path(faces_dir: Path | None, name: str) -> Path:
    """A gallery photo by name: a readable file in ``faces_dir`` (a link only when it leads to
    one); never a path outside it."""
    if faces_dir is None:
        raise PanelError(404, "no gallery", "start the run with --faces-dir DIR")
    root = faces_dir.resolve()
    candidate = (root / name).resolve()
    named_as_photo = Path(name).suffix.lower() in IMAGE_SUFFIXES and candidate.suffix.lower() in IMAGE_SUFFIXES
    if "/" in name or "\\" in name or name.startswith(".") or candidate.parent != root or not named_as_photo or not candidate.is_file() or not os.access(candidate, os.R_OK):
        raise PanelError(404, f"no gallery photo named {name!r}", "pick one from the gallery list")
    return candidate


class SwapView(Protocol):
    """What the panel asks of the swap stage: identities of faces, and its read-only description
    (``generator``: the active one's architecture; ``generators``: the names prepared at start)."""

    def embedding_of_image(self, image: np.ndarray, what: str) -> torch.Tensor: ...

    def embedding_of_face(self, image: np.ndarray, landmarks: np.ndarray) -> torch.Tensor: ...

    def describe(self) -> dict[str, object]: ...


@dataclass
class Panel:
    swap: SwapView | None  # None: a run without a generator (preview and numbers only, nothing live)
    settings: LiveSettings
    stats: StatsCollector
    preview: PreviewSink
    faces_dir: Path | None = None
    recording: RecordingSink | None = None
    started: float = field(default_factory=time.monotonic)
    sources: dict[str, Any] = field(default_factory=dict)  # name → embedding, for per-person choices
    applied_ns: dict[int, int] = field(default_factory=dict)  # choices version → when it was set
    closing: threading.Event = field(default_factory=threading.Event)  # the run is ending: streams close
    decode_wait_s: float = DECODE_WAIT_S  # how long a photo waits for a free decoding slot before 429
    _decoding: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(DECODE_SLOTS))
    _input_watchers: int = 0
    _watch_lock: threading.Lock = field(default_factory=threading.Lock)

    def gallery(self) -> list[str]:
        """The photos ``gallery_path`` serves: a link that leads outside the folder, or to no
        readable photo, is not listed."""
        if self.faces_dir is None or not self.faces_dir.is_dir():
            return []
        names = []
        for entry in sorted(self.faces_dir.iterdir()):
            try:
                gallery_path(self.faces_dir, entry.name)
            except PanelError:
                continue
            names.append(entry.name)
        return names

    def _swap(self) -> SwapView:
        if self.swap is None:
            raise PanelError(409, "this run swaps no faces", "start it with --generator, --identity-encoder and --source")
        return self.swap

    def _identity(self, image: np.ndarray, what: str) -> Any:
        self._swap()
        try:
            return self._swap().embedding_of_image(image, what)
        except SourceError as exc:
            raise PanelError(422, f"no face found in {what}", "use a clear photo where the face is at least 60 pixels wide") from exc
        except ConfigError as exc:
            raise PanelError(409, exc.problem, exc.fix) from exc

    def wear(self, image: np.ndarray, name: str, track_id: int | None = None) -> dict[str, Any]:
        """Compute the identity of ``image`` and make it the default (or ``track_id``'s)."""
        t0 = time.perf_counter()
        identity = self._identity(image, name)
        self.sources[name] = identity
        choice = self._wear(identity, name, track_id)
        self.applied_ns[choice.version] = time.perf_counter_ns()
        log.info("panel: %s now wears %s (%.0f ms to compute)", "everyone" if track_id is None else f"track {track_id}", name, (time.perf_counter() - t0) * 1000)
        return {"source": name, "track": track_id, "version": choice.version, "computed_ms": round((time.perf_counter() - t0) * 1000, 1)}

    def _decoding_slot(self) -> None:
        """Wait (at most ``decode_wait_s``) for one of the DECODE_SLOTS photos read at once; 429
        when they stay taken. Decoding and embedding a photo costs memory and a core: with no
        bound, 20 uploads at once took the process to 4.9 GB and the pipeline's latency to 8.6 s."""
        if not self._decoding.acquire(timeout=self.decode_wait_s):
            raise PanelError(429, f"{DECODE_SLOTS} photos are being read already", "wait for them to finish, then send it again")

    def wear_upload(self, data: bytes, name: str, track_id: int | None = None) -> dict[str, Any]:
        self._decoding_slot()
        try:
            return self.wear(decode_image(data), f"upload:{Path(name).name or 'photo'}", track_id)
        finally:
            self._decoding.release()

    def wear_gallery(self, name: str, track_id: int | None = None) -> dict[str, Any]:
        path = gallery_path(self.faces_dir, name)
        self._decoding_slot()
        try:
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise PanelError(415, f"gallery photo {name} could not be read ({exc.strerror})", "replace it with a readable JPEG or PNG") from exc
            return self.wear(decode_image(data, f"gallery photo {name}", max_bytes=None), f"gallery:{name}", track_id)
        finally:
            self._decoding.release()

    def wear_face_in_frame(self, track_id: int | None = None, for_track: int | None = None) -> dict[str, Any]:
        """The face of ``track_id`` (default: the largest) on the newest frame becomes the source."""
        latest = self.preview.latest()
        if latest is None or not latest.faces:
            raise PanelError(409, "no face in the frame right now", "step into view and try again")
        faces = [f for f in latest.faces if track_id is None or f.track_id == track_id]
        if not faces:
            raise PanelError(404, f"track {track_id} is not in the frame", "pick a face the panel lists")
        face = max(faces, key=lambda f: f.box[2] - f.box[0])
        t0 = time.perf_counter()
        try:
            identity = self._swap().embedding_of_face(latest.frame, face.landmarks)
        except ConfigError as exc:
            raise PanelError(409, exc.problem, exc.fix) from exc
        name = f"frame:track {face.track_id}"
        self.sources[name] = identity
        choice = self._wear(identity, name, for_track)
        self.applied_ns[choice.version] = time.perf_counter_ns()
        return {"source": name, "track": for_track, "version": choice.version, "computed_ms": round((time.perf_counter() - t0) * 1000, 1)}

    def _wear(self, identity: Any, name: str, track_id: int | None) -> SwapChoice:
        if track_id is None:
            return self.settings.update("choice", default=identity, source_name=name).choice
        return self.settings.map_track(track_id, identity).choice

    def map_track(self, track_id: int, wear: str) -> dict[str, Any]:
        """``wear``: 'default', 'none', or a source the panel has used (its name)."""
        if wear == "default":
            live = self.settings.unmap_track(track_id)
        elif wear == "none":
            live = self.settings.map_track(track_id, None)
        elif wear in self.sources:
            live = self.settings.map_track(track_id, self.sources[wear])
        else:
            raise PanelError(404, f"no source named {wear!r}", "upload or pick it first, or use 'default' or 'none'")
        return {"track": track_id, "wears": wear, "version": live.choice.version}

    def _described(self) -> dict[str, Any]:
        return self.swap.describe() if self.swap is not None else {"generator": None, "generators": []}

    def set_generator(self, index: Any) -> dict[str, Any]:
        self._swap()
        names = list(self._described()["generators"])
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(names):
            raise PanelError(400, f"no generator {index!r}", f"use 0 to {len(names) - 1} (--generator, then each --also-generator)")
        return {"generator": index, "name": names[index], "version": self._change("choice", generator=index).choice.version}

    def watch_input(self, watching: bool) -> None:
        """Someone opened (or closed) the input view: input copies are made only while watched."""
        with self._watch_lock:
            self._input_watchers += 1 if watching else -1
            self.settings.update("choice", input_preview=self._input_watchers > 0)

    def set_mode(self, mode: str) -> dict[str, Any]:
        return {"mode": mode, "version": self._change("choice", mode=mode).choice.version}

    def _change(self, section: str, **values: Any) -> LiveState:
        try:
            return self.settings.update(section, **values)  # type: ignore[arg-type]
        except (ConfigError, TypeError, ValueError) as exc:
            raise PanelError(400, f"bad {section} value", str(exc)) from exc

    def set_live(self, section: str, values: dict[str, Any]) -> dict[str, Any]:
        """Live options of ``section`` ('blend', 'swap'), checked exactly as the controls file's
        and the flags' are; answers the section's live options as they now are."""
        if section not in LIVE_SECTIONS:
            raise PanelError(404, f"nothing named {section!r} changes live", f"use one of {', '.join(LIVE_SECTIONS)}")
        if self.swap is None:
            raise PanelError(409, f"this run has no {section} stage", "start it with --generator")
        live = self._change(section, **values)
        return {**self._live(live, section), "version": live.choice.version}

    @staticmethod
    def _live(live: LiveState, section: str) -> dict[str, Any]:
        current = getattr(live, section)
        return {name: getattr(current, name) for name in live_fields(type(current))}

    def state(self) -> dict[str, Any]:
        live = self.settings.now()
        choice = live.choice
        latest = self.preview.latest()
        tracks = [{"id": f.track_id, "wears": self._wears(choice, f.track_id)} for f in latest.faces] if latest else []
        # each live section's options, under its name: the page's widgets find their values there
        sections: dict[str, Any] = {section: self._live(live, section) if self.swap is not None else None for section in LIVE_SECTIONS}
        described = self._described()
        return {
            "mode": choice.mode, "source": choice.source_name, "version": choice.version, "tracks": tracks,
            "sources": sorted(self.sources), "gallery": self.gallery(), **sections,
            "generator": described["generator"], "generators": list(described["generators"]), "active_generator": choice.generator,
            "steady": live.swap.steady if self.swap is not None else None,  # also under "swap": kept for older pages
            "uptime_s": round(time.monotonic() - self.started, 1),
            "recording": self._recording_name(),
            "apply_to_frame_ms": self.apply_latencies_ms()[-10:],
        }

    def apply_latencies_ms(self) -> list[float]:
        """For each face change: from the moment it was set to the first output frame swapped
        under it (or a later change), in ms."""
        latencies = []
        for version, t_set in sorted(self.applied_ns.items()):
            shown = next((t for v, t in self.preview.shown if v >= version), None)
            if shown is not None:
                latencies.append(round((shown - t_set) / 1e6, 1))
        return latencies

    def _recording_name(self) -> str | None:
        path = self.recording.recording if self.recording is not None else None
        return path.name if path else None

    def _wears(self, choice: SwapChoice, track_id: int) -> str:
        if choice.wears_nothing(track_id):
            return "none"
        chosen = choice.per_track.get(track_id)
        if chosen is None:
            return "default"
        return next((name for name, identity in self.sources.items() if identity is chosen), "chosen")

    def record(self, action: str) -> dict[str, Any]:
        """Start or stop recording the output to a new file in --record-dir."""
        if self.recording is None:
            raise PanelError(409, "this run cannot record", "start it with --control")
        if action == "start":
            try:
                path = self.recording.start()
            except SinkError as exc:
                raise PanelError(507, exc.problem, exc.fix or "choose another --record-dir") from exc
            return {"recording": path.name}
        if action == "stop":
            written = self.recording.stop()
            return {"recording": None, "file": written.name if written else None, "frames": self.recording.frames}
        raise PanelError(400, f"unknown action {action!r}", "use start or stop")

    def numbers(self) -> dict[str, Any]:
        return self.stats.live()
