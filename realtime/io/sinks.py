"""Outputs: video files and network streams through PyAV, a virtual camera through pyvirtualcam,
and a null sink for benchmarks.

File outputs are written under a temporary name and renamed only when finalized, so a crash never
leaves a half-written file under the name the user asked for; a run that fails leaves what it
wrote as ``NAME.incomplete.EXT`` and says so.
"""

from __future__ import annotations

import errno
import fcntl
import gc
import logging
import os
import re
import secrets
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from realtime.bundle import FrameBundle
from realtime.choices import SinkKind
from realtime.config import OutputConfig
from realtime.errors import ConfigError, SinkError, VirtualCameraError
from realtime.io.audio import mux_audio
from realtime.io.sources import SourceInfo, nominal_fps
from realtime.pipeline.stage import SinkStage

log = logging.getLogger("realtime")

FILE_FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".ts": "mpegts", ".m4v": "mp4"}
STREAM_FORMATS = {"udp": "mpegts", "tcp": "mpegts", "srt": "mpegts", "rtp": "rtp_mpegts", "rtmp": "flv", "rtmps": "flv", "rtsp": "rtsp"}
TIME_BASE = Fraction(1, 90000)  # the MPEG clock: exact for 24/25/30/60 and NTSC rates alike


@dataclass(frozen=True)
class SinkSpec:
    kind: SinkKind
    target: str


def parse_sink_spec(text: str) -> SinkSpec:
    """Decide what an ``--output`` value names (no I/O)."""
    value = text.strip()
    lowered = value.lower()
    if lowered == "null":
        return SinkSpec("null", "null")
    if lowered == "vcam" or lowered.startswith("vcam:"):
        return SinkSpec("vcam", value[5:] if ":" in value else "")
    if "://" in value:
        scheme = lowered.split("://", 1)[0]
        if scheme == "file":
            return parse_sink_spec(value[len("file://"):])
        if scheme not in STREAM_FORMATS:
            raise ConfigError(f"output URL scheme {scheme!r} is not supported", f"use one of {', '.join(STREAM_FORMATS)}")
        return SinkSpec("stream", value)
    suffix = Path(value).suffix.lower()
    if suffix not in FILE_FORMATS:
        raise ConfigError(
            f"cannot write {value!r}: unknown video file type {suffix or '(none)'}",
            f"end the name with one of {', '.join(FILE_FORMATS)}",
        )
    return SinkSpec("file", value)


def even_size(width: int, height: int) -> tuple[int, int]:
    """H.264 with 4:2:0 chroma needs even sizes; odd inputs lose their last row/column."""
    return width - width % 2, height - height % 2


class _EncodingSink(SinkStage):
    """Shared encoder logic of file and stream outputs: frames in, muxed packets out."""

    def __init__(self, name: str, info: SourceInfo, config: OutputConfig) -> None:
        self.name = name
        self.info = info
        self.config = config
        self.width, self.height = even_size(info.width, info.height)
        self.container: Any = None
        self.stream: Any = None
        self._last_pts = -1
        self.frames_written = 0

    def _open_container(self, target: str, av_format: str | None, codec_options: dict[str, str], bit_rate: int | None, container_options: dict[str, str] | None = None) -> None:
        import av

        self.container = av.open(target, "w", format=av_format, options=container_options or {})
        try:
            stream = self.container.add_stream(self.config.codec, rate=Fraction(nominal_fps(self.info)).limit_denominator(1001))
            if stream.type != "video":
                raise ValueError(f"{self.config.codec} is not a video encoder")
        except (av.error.FFmpegError, ValueError, TypeError) as exc:  # TypeError: an audio codec
            self.container.close()
            self.container = None
            raise ConfigError(f"video codec {self.config.codec!r} is not available ({exc})", "use --codec libx264 or --codec mpeg4") from None
        stream.width, stream.height = self.width, self.height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = TIME_BASE
        if bit_rate:
            stream.bit_rate = bit_rate
        if self.config.codec == "libx264":
            stream.options = codec_options
        try:
            # the encoder opens now, not at the first frame: a bad --preset fails before the run
            stream.codec_context.open(strict=True)
        except (av.error.FFmpegError, ValueError) as exc:
            self.container.close()
            self.container = None
            raise ConfigError(
                f"the {self.config.codec} encoder rejects its options ({codec_options or 'defaults'}: {str(exc).splitlines()[0]})",
                "use a valid --preset (ultrafast … veryslow) and --crf 0-51, or another --codec",
            ) from None
        self.stream = stream

    def write(self, bundle: FrameBundle) -> None:
        import av

        frame = bundle.frame
        if frame.shape[1] != self.width or frame.shape[0] != self.height:
            frame = frame[: self.height, : self.width]
        video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
        # Timestamps follow the source's media time (exact for files, capture time for cameras);
        # they must strictly increase or the muxer rejects the packet.
        pts = max(int(round(bundle.media_time_s / TIME_BASE)), self._last_pts + 1)
        video_frame.pts, video_frame.time_base = pts, TIME_BASE
        self._last_pts = pts
        try:
            for packet in self.stream.encode(video_frame):
                self.container.mux(packet)
        except OSError as exc:
            raise self._write_error(exc) from None
        self.frames_written += 1

    def _flush_and_close(self) -> None:
        try:
            for packet in self.stream.encode(None):
                self.container.mux(packet)
        finally:
            self.container.close()

    def _write_error(self, exc: OSError) -> SinkError:
        return SinkError(f"writing {self.name} failed ({exc.strerror or exc})", "check the destination")


class FileSink(_EncodingSink):
    """An MP4 (or MOV/MKV/TS) file, H.264, timestamps from the source, audio carried over.

    Written under a hidden partial name unique to this run (two runs never share one) while an
    exclusive lock beside the file keeps a second run off the same output. MP4 and MOV are written
    fragmented (a fragment a second), so a run cut short still leaves a playable ``.incomplete``
    file. Finalizing is checked: a file that could not be completed fails the run."""

    def __init__(self, path: Path, info: SourceInfo, config: OutputConfig, *, carry_audio: bool) -> None:
        super().__init__(f"file:{path}", info, config)
        self.path = path
        self.partial = path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(3)}.partial{path.suffix}")
        self.audio_from = info.audio_path if carry_audio and config.audio else None
        self.final_path: Path | None = None
        self._lock: OutputLock | None = None
        self._broken = False  # a write failed: FFmpeg's state is not safe to flush any more

    def setup(self) -> None:
        parent = self.path.parent
        if not parent.exists():
            raise SinkError(f"output folder {parent} does not exist", f"create it (mkdir -p {parent}) or choose another path")
        if self.path.is_dir():
            raise SinkError(f"output {self.path} is a folder", "name a file, e.g. out.mp4")
        if not os.access(parent, os.W_OK):
            raise SinkError(f"output folder {parent} is not writable", "choose a folder you can write to")
        free = free_bytes(parent)
        if free is not None and free < MIN_FREE_BYTES:
            raise SinkError(f"the disk of {parent} is full ({free // 1024} KiB free)", "free some space or choose another disk")
        self._lock = OutputLock.take(self.path)
        recover_stale_partials(self.path)
        if self.path.exists():
            log.warning("%s exists: it will be replaced when this run finishes", self.path)
        options = {"crf": str(self.config.crf), "preset": self.config.preset}
        try:
            # PyAV creates the file only at the first packet; create it now so a read-only or
            # full destination fails before the first frame, not in the middle of the run.
            self.partial.touch()
            self._open_container(str(self.partial), FILE_FORMATS[self.path.suffix.lower()], options, None, container_options(self.path.suffix))
        except OSError as exc:
            self._abandon()
            raise SinkError(f"cannot create {self.path} ({exc.strerror or exc})", "choose a path you can write to") from None
        except BaseException:
            self._abandon()
            raise

    def _abandon(self) -> None:
        """Set-up failed: no partial file and no lock left behind."""
        self.partial.unlink(missing_ok=True)
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def write(self, bundle: FrameBundle) -> None:
        try:
            super().write(bundle)
        except SinkError:
            self._broken = True
            raise

    def _write_error(self, exc: OSError) -> SinkError:
        if exc.errno == errno.ENOSPC:
            return SinkError(f"disk full while writing {self.path}", f"free some space; frames that reached the disk are kept in {self.path.stem}.incomplete{self.path.suffix}")
        return SinkError(f"writing {self.path} failed ({exc.strerror or exc})", "check the disk and the path")

    def teardown(self, *, complete: bool) -> None:
        try:
            self._finalize(complete)
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def _finalize(self, complete: bool) -> None:
        if self.container is None:
            return
        failure: str | None = None
        try:
            if self._broken:
                # never flush after a failed write: muxing after a failed header crashed FFmpeg
                self.container.close()
            else:
                self._flush_and_close()
        except (OSError, av_error()) as exc:
            failure = getattr(exc, "strerror", None) or str(exc)
        if failure is None and self.frames_written and _size(self.partial) == 0:
            failure = "nothing reached the disk"
        if failure is not None or self._broken:
            complete = False
        if self.frames_written == 0 or _size(self.partial) == 0:
            self.partial.unlink(missing_ok=True)
            if failure is not None:
                raise SinkError(f"could not finalize {self.path} ({failure}): no file was written", "free some space or choose another disk")
            log.warning("%s: no frame was written, so no file was created", self.path)
            return
        if not complete:
            self.final_path = self.path.with_name(f"{self.path.stem}.incomplete{self.path.suffix}")
            os.replace(self.partial, self.final_path)
            log.error("the run did not finish: what reached the disk of the %d frames encoded is in %s", self.frames_written, self.final_path)
            if failure is not None:
                raise SinkError(f"could not finalize {self.path} ({failure})", f"free some space; what was written is in {self.final_path}")
            return
        if self.audio_from is not None:
            try:
                mux_audio(self.partial, self.audio_from, self.path, loop=self.info.looped)
                self.partial.unlink(missing_ok=True)
                self.final_path = self.path
                return
            except Exception as exc:  # noqa: BLE001 - the video is still good without audio
                log.warning("could not carry the audio over (%s); writing the video without it", exc)
        if container_options(self.path.suffix):
            try:  # the finished file as a plain MP4 (frame count and index in the header); a copy, no re-encode
                remux(self.partial, self.path)
                self.partial.unlink(missing_ok=True)
                self.final_path = self.path
                return
            except Exception as exc:  # noqa: BLE001 - the fragmented file plays too
                log.warning("could not rewrite %s unfragmented (%s); keeping it fragmented", self.path, exc)
        os.replace(self.partial, self.path)
        self.final_path = self.path


def recover_stale_partials(path: Path) -> list[Path]:
    """What runs that were killed left beside ``path`` (``.NAME.<pid>-<hex>.partial.EXT``),
    recovered: called with ``path``'s lock held. Every run writing ``path`` holds that lock while
    its partial file exists, so one seen now belongs to a run that is gone; and, to be sure, the
    process named in it must no longer exist. A partial with bytes in it is kept as
    ``NAME.incomplete.EXT`` (``NAME.incomplete-2.EXT``... when that is taken; MP4 and MOV are
    written fragmented, so it plays) and said so; an empty one is removed. Returns the files kept."""
    prefix, suffix = f".{path.stem}.", f".partial{path.suffix}"
    kept: list[Path] = []
    for entry in sorted(os.scandir(path.parent), key=lambda e: e.name):
        name = entry.name
        match = re.fullmatch(r"(\d+)-[0-9a-f]{6}", name[len(prefix):-len(suffix)]) if name.startswith(prefix) and name.endswith(suffix) else None
        if match is None or not entry.is_file(follow_symlinks=False):
            continue
        partial, pid = Path(entry.path), int(match.group(1))
        if process_exists(pid):
            log.warning("%s: leaving %s alone: process %d, which was writing it, still exists", path, partial.name, pid)
            continue
        if _size(partial) == 0:
            partial.unlink(missing_ok=True)
            log.warning("%s: removed %s, left empty by a run that ended without finishing it (process %d)", path, partial.name, pid)
            continue
        target = path.with_name(f"{path.stem}.incomplete{path.suffix}")
        number = 2
        while target.exists():
            target = path.with_name(f"{path.stem}.incomplete-{number}{path.suffix}")
            number += 1
        os.replace(partial, target)  # no race: a run writes NAME.incomplete* only while it holds the lock
        log.warning("%s: a run that ended without finishing it (process %d) left %s: what reached the disk is kept as %s", path, pid, partial.name, target)
        kept.append(target)
    return kept


def process_exists(pid: int) -> bool:
    """Whether a process ``pid`` exists (one of another user's counts: it cannot be signalled)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, ValueError):  # no such pid can exist
        return False
    return True


def container_options(suffix: str) -> dict[str, str]:
    """MP4/MOV fragmented every second (an interrupted file stays playable), others as they are."""
    if suffix.lower() in (".mp4", ".mov", ".m4v"):
        # flush_packets: each finished fragment reaches the file at once, not when FFmpeg's buffer fills
        return {"movflags": "+frag_keyframe+empty_moov+default_base_moof", "frag_duration": "1000000", "flush_packets": "1"}
    return {}


def remux(source: Path, out_path: Path) -> None:
    """``source``'s video packets into ``out_path`` as they are (no re-encode); atomic."""
    import av

    tmp = out_path.with_name(f".{out_path.stem}.remuxing{out_path.suffix}")
    try:
        with av.open(str(source)) as src, av.open(str(tmp), "w") as out:
            stream_in = src.streams.video[0]
            stream_out = out.add_stream_from_template(stream_in)
            for packet in src.demux(stream_in):
                if packet.dts is None:
                    continue
                packet.stream = stream_out
                out.mux(packet)
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)


def av_error() -> type[Exception]:
    import av

    return av.error.FFmpegError  # type: ignore[no-any-return]


MIN_FREE_BYTES = 1 << 20  # less than a second of 1080p video: the run would fail at once


def free_bytes(folder: Path) -> int | None:
    """Bytes this user may still write under ``folder``; None when unknown (a pseudo or read-only
    file system, which the creation of the file itself then reports)."""
    try:
        info = os.statvfs(folder)
    except (OSError, AttributeError):
        return None
    if info.f_blocks == 0 or info.f_flag & getattr(os, "ST_RDONLY", 1):
        return None
    return info.f_bavail * info.f_frsize


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class OutputLock:
    """An exclusive lock on an output path, held for the run (``.NAME.lock`` beside it; the OS
    releases it if the process dies, so a crash never leaves the output locked)."""

    def __init__(self, lock_path: Path, fd: int) -> None:
        self.lock_path = lock_path
        self.fd = fd

    @classmethod
    def take(cls, path: Path) -> OutputLock:
        lock_path = path.with_name(f".{path.name}.lock")
        try:
            fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as exc:
            raise SinkError(f"cannot create {path} (its lock file: {exc.strerror or exc})", "choose a path you can write to") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise SinkError(f"another run is writing {path}", "wait for it to finish, or choose another --output") from None
        return cls(lock_path, fd)

    def release(self) -> None:
        self.lock_path.unlink(missing_ok=True)
        os.close(self.fd)


class StreamSink(_EncodingSink):
    """A network stream (udp:// MPEG-TS for OBS's media source, rtmp:// FLV, ...), low-latency H.264."""

    def __init__(self, url: str, info: SourceInfo, config: OutputConfig) -> None:
        super().__init__(f"stream:{url}", info, config)
        scheme = url.split("://", 1)[0].lower()
        if scheme == "udp" and "pkt_size" not in url:
            # 7 TS packets per datagram: fits a 1500-byte MTU, which is what OBS/VLC/ffplay expect.
            url += ("&" if "?" in url else "?") + "pkt_size=1316"
        self.url = url
        self.av_format = STREAM_FORMATS[scheme]

    def setup(self) -> None:
        fps = nominal_fps(self.info)
        options = {
            "preset": "veryfast",
            "tune": "zerolatency",  # no lookahead, no B-frames: a frame leaves as soon as it is encoded
            "g": str(max(1, round(fps))),  # a keyframe every second, so a late viewer joins quickly
        }
        try:
            self._open_container(self.url, self.av_format, options, self.config.stream_bitrate_kbps * 1000)
        except OSError as exc:
            raise SinkError(f"cannot open stream {self.url} ({exc.strerror or exc})", "check the URL and that the receiver (if any) is running") from None

    def _write_error(self, exc: OSError) -> SinkError:
        return SinkError(f"stream {self.url} failed ({exc.strerror or exc})", "check the network and the receiver")

    def teardown(self, *, complete: bool) -> None:
        if self.container is not None:
            try:
                self._flush_and_close()
            except OSError as exc:
                log.warning("closing stream %s: %s", self.url, exc.strerror or exc)


CameraFactory = Callable[..., Any]


def virtual_camera_fix(platform: str = sys.platform) -> str:
    """How to get a virtual camera device on this platform."""
    if platform.startswith("linux"):
        return (
            "load v4l2loopback: sudo modprobe v4l2loopback devices=1 video_nr=10 card_label=realtime "
            "exclusive_caps=1 (package v4l2loopback-dkms), then --vcam-device /dev/video10"
        )
    if platform == "darwin":
        return "install OBS Studio and start its virtual camera once, or use --output udp://127.0.0.1:5000 with OBS"
    return "install OBS Studio (its virtual camera) or Unity Capture, or use --output udp://127.0.0.1:5000 with OBS"


def linux_loopback_devices(sys_root: Path = Path("/sys/devices/virtual/video4linux")) -> list[str]:
    """``/dev/videoN`` nodes that v4l2loopback created (they live under the virtual device tree)."""
    if not sys_root.is_dir():
        return []
    return sorted(f"/dev/{entry.name}" for entry in sys_root.iterdir() if entry.name.startswith("video"))


class VirtualCameraSink(SinkStage):
    """Frames to a virtual webcam that OBS, Zoom or Meet can pick."""

    def __init__(self, info: SourceInfo, config: OutputConfig, *, device: str | None = None, factory: CameraFactory | None = None) -> None:
        self.name = "vcam"
        self.info = info
        self.backend = None if config.vcam_backend == "auto" else config.vcam_backend
        self.device = device or config.vcam_device
        self.factory = factory
        self.camera: Any = None

    def setup(self) -> None:
        factory = self.factory
        if factory is None:
            if sys.platform.startswith("linux") and self.backend in (None, "v4l2loopback") and self.device is None and not linux_loopback_devices():
                raise VirtualCameraError("no virtual camera device exists", virtual_camera_fix())
            try:
                import pyvirtualcam
            except ImportError:
                raise VirtualCameraError("pyvirtualcam is not installed", "pip install pyvirtualcam") from None
            factory = pyvirtualcam.Camera
        width, height = self.info.width, self.info.height
        previous_hook = sys.unraisablehook
        # pyvirtualcam's __del__ complains when its constructor fails; our error says it better.
        sys.unraisablehook = lambda _: None
        try:
            self.camera = factory(width, height, nominal_fps(self.info), backend=self.backend, device=self.device)
        except KeyError:
            raise VirtualCameraError(f"virtual camera backend {self.backend!r} does not exist on this platform", virtual_camera_fix()) from None
        except (RuntimeError, OSError) as exc:
            raise VirtualCameraError(f"cannot open the virtual camera ({str(exc).splitlines()[0]})", virtual_camera_fix()) from None
        finally:
            gc.collect()
            sys.unraisablehook = previous_hook
        log.info("virtual camera: %s", getattr(self.camera, "device", self.device or "default"))

    def write(self, bundle: FrameBundle) -> None:
        try:
            self.camera.send(bundle.frame)
        except (RuntimeError, OSError) as exc:
            raise VirtualCameraError(f"the virtual camera stopped accepting frames ({exc})", virtual_camera_fix()) from None

    def teardown(self, *, complete: bool) -> None:
        if self.camera is not None:
            self.camera.close()


class NullSink(SinkStage):
    """Discards frames: for benchmarks, where only the timing matters."""

    name = "null"

    def write(self, bundle: FrameBundle) -> None:
        return None


def make_sinks(specs: Sequence[SinkSpec], info: SourceInfo, config: OutputConfig) -> list[SinkStage]:
    """Sinks for the parsed ``--output`` values; audio goes to the first file output only."""
    sinks: list[SinkStage] = []
    audio_taken = False
    for spec in specs:
        if spec.kind == "file":
            sinks.append(FileSink(Path(spec.target), info, config, carry_audio=not audio_taken))
            audio_taken = True
        elif spec.kind == "stream":
            sinks.append(StreamSink(spec.target, info, config))
        elif spec.kind == "vcam":
            sinks.append(VirtualCameraSink(info, config, device=spec.target or None))
        else:
            sinks.append(NullSink())
    names = [str(Path(s.target).resolve()) if s.kind == "file" else sink.name for s, sink in zip(specs, sinks, strict=True)]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ConfigError(f"the same output is named twice: {', '.join(sorted(duplicates))}", "give each --output once")
    return sinks
