"""Video inputs through PyAV: webcams (v4l2, dshow, avfoundation), files and network URLs.

``open_source`` opens the input on the calling thread so that a missing file, a busy camera or a
corrupt video fails before any thread starts, with an error that names the fix.
"""

from __future__ import annotations

import errno
import logging
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from realtime.choices import SourceKind
from realtime.config import CaptureConfig, parse_size
from realtime.errors import SourceError

log = logging.getLogger("realtime")

URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt", "rtp", "hls")
MAX_CORRUPT_PACKETS = 50  # consecutive undecodable packets before a file counts as corrupt


@dataclass(frozen=True)
class InputSpec:
    """What ``--input`` names, after classification (no I/O)."""

    kind: SourceKind
    target: str
    av_format: str | None = None  # PyAV demuxer for cameras


@dataclass(frozen=True)
class SourceInfo:
    kind: SourceKind
    description: str
    width: int
    height: int
    fps: float
    total_frames: int | None
    audio_path: Path | None  # a file whose audio a file sink may carry over
    looped: bool = False  # --loop: the video repeats the file, so its audio must repeat too

    @property
    def live(self) -> bool:
        return self.kind in ("camera", "url")


def classify_input(text: str, platform: str = sys.platform) -> InputSpec:
    """Decide what kind of input a ``--input`` value names, for this platform."""
    value = text.strip()
    lowered = value.lower()
    if lowered == "demo":
        return InputSpec("demo", "demo")
    if "://" in value:
        scheme = lowered.split("://", 1)[0]
        if scheme == "file":
            return InputSpec("file", value[len("file://"):])
        if scheme not in URL_SCHEMES:
            raise SourceError(f"input URL scheme {scheme!r} is not supported", f"use one of {', '.join(URL_SCHEMES)}")
        return InputSpec("url", value)
    for prefix in ("camera:", "webcam:"):
        if lowered.startswith(prefix):
            index = value[len(prefix):]
            if not index.isdigit():
                raise SourceError(f"camera {value!r} needs a number", "write e.g. camera:0")
            if platform.startswith("linux"):
                return InputSpec("camera", f"/dev/video{index}", "v4l2")
            if platform == "darwin":
                return InputSpec("camera", index, "avfoundation")
            raise SourceError(
                "on Windows cameras are chosen by name",
                "use --input 'video=<camera name>' (see 'realtime doctor' for the names)",
            )
    if lowered.startswith("video="):
        return InputSpec("camera", value, "dshow")
    if value.startswith("/dev/video"):
        return InputSpec("camera", value, "v4l2")
    return InputSpec("file", value)


def camera_options(config: CaptureConfig, av_format: str) -> dict[str, str]:
    """PyAV/FFmpeg demuxer options for the requested size, fps and format."""
    options: dict[str, str] = {}
    if config.camera_size:
        width, height = parse_size(config.camera_size, what="--camera-size")
        options["video_size"] = f"{width}x{height}"
    if config.camera_fps:
        options["framerate"] = f"{config.camera_fps:g}"
    if config.camera_format:
        key = {"v4l2": "input_format", "dshow": "vcodec", "avfoundation": "pixel_format"}[av_format]
        options[key] = config.camera_format
    if av_format == "dshow":
        options["rtbufsize"] = "64M"  # dshow drops frames with its tiny default buffer at 1080p
    return options


class Pacer:
    """Releases frames at their media time, like a camera would; resyncs after long stalls."""

    def __init__(self, clock_ns: Any, sleep: Any, max_behind_s: float = 0.25) -> None:
        self.clock_ns = clock_ns
        self.sleep = sleep
        self.max_behind_s = max_behind_s
        self._origin_ns: int | None = None
        self._origin_media_s = 0.0

    def wait_for(self, media_time_s: float) -> None:
        now = self.clock_ns()
        if self._origin_ns is None:
            self._origin_ns, self._origin_media_s = now, media_time_s
            return
        due_ns = self._origin_ns + int((media_time_s - self._origin_media_s) * 1e9)
        if now - due_ns > self.max_behind_s * 1e9:
            # Far behind (a stall, a debugger): restart the schedule instead of bursting frames.
            self._origin_ns, self._origin_media_s = now, media_time_s
            return
        if due_ns > now:
            self.sleep((due_ns - now) / 1e9)


class VideoSource:
    """Decoded RGB frames with their media time, from any input kind."""

    info: SourceInfo

    def frames(self) -> Iterator[tuple[np.ndarray, float]]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the file, device or connection."""


class PyAVSource(VideoSource):
    """A file, camera or URL opened with PyAV."""

    def __init__(self, spec: InputSpec, config: CaptureConfig) -> None:
        import av

        self.spec = spec
        self.loop = config.loop and spec.kind == "file"
        self.corrupt_packets = 0
        self.timeout_s = config.open_timeout_s
        options = camera_options(config, spec.av_format) if spec.av_format else {}
        if spec.kind == "file":
            path = Path(spec.target)
            if not path.exists():
                raise SourceError(f"input file {path} does not exist", "check the path, or try --input demo")
            if path.is_dir():
                raise SourceError(f"input {path} is a folder", "name a video file inside it")
        try:
            self.container = av.open(
                spec.target, "r", format=spec.av_format, options=options, timeout=config.open_timeout_s
            )
        except av.error.FileNotFoundError:
            raise self._missing_error() from None
        except PermissionError:
            raise SourceError(f"no permission to read {spec.target}", "check the file's permissions or your user's 'video' group") from None
        except (OSError, av.error.FFmpegError) as exc:
            raise self._open_error(exc) from None
        if not self.container.streams.video:
            self.container.close()
            raise SourceError(f"{spec.target} has no video stream", "give a video file, camera or stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"  # frame threads: decode keeps up with 4K files on a few cores
        width, height = self.stream.codec_context.width, self.stream.codec_context.height
        if spec.kind == "camera" and config.camera_size:
            wanted = parse_size(config.camera_size, what="--camera-size")
            if (width, height) != wanted:
                self.container.close()
                raise SourceError(
                    f"camera {spec.target} gives {width}x{height}, not the requested {config.camera_size}",
                    "pick a size the camera supports (v4l2-ctl --list-formats-ext lists them on Linux)",
                )
        rate = self.stream.average_rate or self.stream.guessed_rate or Fraction(30)
        total = self.stream.frames or None
        if total is None and spec.kind == "file" and self.container.duration:
            total = int(round(self.container.duration / 1e6 * float(rate))) or None
        has_audio = spec.kind == "file" and bool(self.container.streams.audio)
        self.info = SourceInfo(
            kind=spec.kind,
            description=spec.target,
            width=width,
            height=height,
            fps=float(rate),
            total_frames=None if self.loop else total,
            audio_path=Path(spec.target) if has_audio else None,
            looped=self.loop,
        )
        self._frame_duration_s = 1.0 / float(rate) if rate else 1 / 30

    def _missing_error(self) -> SourceError:
        if self.spec.kind == "camera":
            return SourceError(f"camera {self.spec.target} does not exist", "plug it in, or list cameras with 'realtime doctor'")
        return SourceError(f"input {self.spec.target} was not found", "check the path or URL")

    def _open_error(self, exc: Exception) -> SourceError:
        target = self.spec.target
        errno_value = getattr(exc, "errno", None)
        reason = getattr(exc, "strerror", None) or str(exc)
        if errno_value == errno.EBUSY:
            return SourceError(f"camera {target} is busy", "close the other program using it (OBS, a browser tab, a video call)")
        if errno_value in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
            return self._missing_error()
        if errno_value == errno.EINVAL and self.spec.kind == "camera":
            return SourceError(f"camera {target} rejected the requested size, rate or format", "try another --camera-size/--camera-fps/--camera-format")
        # PyAV's own timeout interrupts FFmpeg, which then reports "Immediate exit requested" (ExitError)
        if errno_value == errno.ETIMEDOUT or "timed out" in str(exc).lower() or _is_timeout(exc):
            return SourceError(f"{target} did not answer within the open timeout", "check that the stream is running, or raise --open-timeout-s")
        if self.spec.kind == "file":
            return SourceError(f"{target} is not a readable video ({reason})", "check that the file is a complete video (try playing it)")
        return SourceError(f"cannot open {target} ({reason})", "check the device or URL")

    def frames(self) -> Iterator[tuple[np.ndarray, float]]:
        import av

        offset_s = 0.0
        decoded_any = False
        while True:
            start_s: float | None = None
            last_s = 0.0
            for frame in self._decode(av):
                decoded_any = True
                t = float(frame.time) if frame.time is not None else last_s + self._frame_duration_s
                if start_s is None:
                    start_s = t
                last_s = t
                yield frame.to_ndarray(format="rgb24"), offset_s + (t - start_s)
            if not decoded_any:
                raise SourceError(f"{self.spec.target} contains no decodable video frames", "check that the file is a complete video")
            if not self.loop:
                return
            offset_s += (last_s - (start_s or 0.0)) + self._frame_duration_s
            self.container.seek(0, stream=self.stream)

    def _decode(self, av: Any) -> Iterator[Any]:
        consecutive_bad = 0
        for packet in self._demux(av):
            try:
                decoded = packet.decode()
            except av.error.InvalidDataError:
                # A damaged packet in the middle of a file: skip it, count it, keep the stream alive.
                self.corrupt_packets += 1
                consecutive_bad += 1
                if consecutive_bad >= MAX_CORRUPT_PACKETS:
                    raise SourceError(f"{self.spec.target} is corrupt ({consecutive_bad} undecodable packets in a row)", "re-encode or replace the file") from None
                continue
            consecutive_bad = 0
            yield from decoded

    def _demux(self, av: Any) -> Iterator[Any]:
        """The stream's packets; a live input that stops answering ends with the timeout's message."""
        packets = self.container.demux(self.stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.ExitError:
                raise SourceError(
                    f"{self.spec.target} stopped sending frames (nothing within the {self.timeout_s:g} s read timeout)",
                    "check that the camera or stream is still running, or raise --open-timeout-s",
                ) from None
            except (OSError, av.error.FFmpegError) as exc:
                if self.spec.kind == "file":
                    raise SourceError(f"{self.spec.target} cannot be read further ({getattr(exc, 'strerror', None) or exc})", "check that the file is complete") from None
                raise SourceError(f"{self.spec.target} stopped ({getattr(exc, 'strerror', None) or exc})", "check the device or stream, then restart") from None
            yield packet

    def close(self) -> None:
        self.container.close()


def _is_timeout(exc: Exception) -> bool:
    """FFmpeg's answer to PyAV's timeout callback: ExitError, 'Immediate exit requested'."""
    return type(exc).__name__ == "ExitError" or "immediate exit requested" in str(exc).lower()


def open_source(config: CaptureConfig) -> VideoSource:
    """Open whatever ``config.input`` names; raises SourceError with a fix."""
    spec = classify_input(config.input)
    if spec.kind == "demo":
        from realtime.io.demo import DemoSource

        return DemoSource(frames=config.demo_frames, loop=config.loop)
    return PyAVSource(spec, config)


def nominal_fps(info: SourceInfo) -> float:
    """A frame rate sinks can declare (some containers reject absurd or fractional junk)."""
    fps = info.fps if math.isfinite(info.fps) and 1 <= info.fps <= 240 else 30.0
    return float(Fraction(fps).limit_denominator(1001))
