"""Fixtures that tests, benchmarks and users share: synthetic frames, sources, stages, videos."""

from __future__ import annotations

import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from realtime.bundle import FrameBundle
from realtime.io.sources import SourceInfo, VideoSource
from realtime.pipeline.stage import SinkStage, Stage


def make_frame(index: int, width: int = 64, height: int = 48) -> np.ndarray:
    """A deterministic H×W×3 uint8 RGB frame: a top band with ``index`` in binary (8 black/white
    blocks, which survive lossy encoding) above colour ramps (which show channel mix-ups)."""
    frame = np.empty((height, width, 3), np.uint8)
    frame[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    frame[..., 1] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
    frame[..., 2] = 128
    band, block = max(4, height // 4), width // 8
    for bit in range(8):
        frame[:band, bit * block : (bit + 1) * block] = 255 if (index >> bit) & 1 else 0
    return frame


def frame_index_of(frame: np.ndarray) -> int:
    """Inverse of ``make_frame`` (modulo 256), read from the centres of the binary blocks."""
    band, block = max(4, frame.shape[0] // 4), frame.shape[1] // 8
    index = 0
    for bit in range(8):
        centre = frame[band // 4 : band - band // 4, bit * block + block // 4 : (bit + 1) * block - block // 4]
        index |= int(centre.mean() > 127) << bit
    return index


class SyntheticSource(VideoSource):
    """``count`` frames of one size; reuses a few preallocated arrays so it costs ~nothing per frame."""

    def __init__(self, count: int, width: int = 64, height: int = 48, fps: float = 30.0, *, distinct: bool = True, live: bool = False) -> None:
        self.count = count
        self.distinct = distinct
        self._pool = [make_frame(i, width, height) for i in range(256 if distinct else 1)]
        self.info = SourceInfo("camera" if live else "file", "synthetic", width, height, fps, count, None)
        self.closed = False

    def frames(self) -> Iterator[tuple[np.ndarray, float]]:
        for i in range(self.count):
            yield self._pool[i % len(self._pool)], i / self.info.fps

    def close(self) -> None:
        self.closed = True


class PassThroughStage(Stage):
    """Does nothing: isolates the engine's own cost (queue hops, threads, timing)."""

    def __init__(self, name: str = "passthrough", delay_s: float = 0.0) -> None:
        self.name = name
        self.delay_s = delay_s

    def process(self, bundle: FrameBundle) -> FrameBundle:
        if self.delay_s:
            time.sleep(self.delay_s)
        return bundle


class CollectingSink(SinkStage):
    """Keeps every frame id it receives, in order; can be slowed down or made to fail."""

    def __init__(self, name: str = "collect", delay_s: float = 0.0, fail_after: int | None = None) -> None:
        self.name = name
        self.delay_s = delay_s
        self.fail_after = fail_after
        self.frame_ids: list[int] = []
        self.finalized: bool | None = None

    def write(self, bundle: FrameBundle) -> None:
        if self.fail_after is not None and len(self.frame_ids) >= self.fail_after:
            raise OSError(28, "No space left on device")
        if self.delay_s:
            time.sleep(self.delay_s)
        self.frame_ids.append(bundle.frame_id)

    def teardown(self, *, complete: bool) -> None:
        self.finalized = complete


def make_test_video(path: Path, frames: int = 30, width: int = 64, height: int = 48, fps: int = 30, *, audio: bool = False, codec: str = "libx264") -> Path:
    """Encode a small clip of ``make_frame`` frames (and optionally a 440 Hz tone) with PyAV."""
    import av

    with av.open(str(path), "w") as container:
        video: Any = container.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            video.options = {"crf": "10", "preset": "ultrafast"}
        sound: Any = container.add_stream("aac", rate=48000) if audio else None
        samples_per_frame = 48000 // fps
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(make_frame(i, width, height), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in video.encode(frame):
                container.mux(packet)
            if sound is not None:
                t = (np.arange(samples_per_frame) + i * samples_per_frame) / 48000
                tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
                audio_frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
                audio_frame.sample_rate = 48000
                audio_frame.pts, audio_frame.time_base = i * samples_per_frame, Fraction(1, 48000)
                for packet in sound.encode(audio_frame):
                    container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if sound is not None:
            for packet in sound.encode(None):
                container.mux(packet)
    return path


def ground_truth_path(index: int, fps: float = 30.0, *, noise_px: float = 0.0, seed: int = 0) -> np.ndarray:
    """2×3 ``frame_from_image`` of the astronaut photo in a 640×480 frame along a known path:
    still (0–1.5 s), sliding right 1 s, still, turning and growing 1 s, still (to 6 s), with
    optional small per-frame position noise that is part of the truth (hand shake)."""
    import cv2

    t = index / fps

    def ramp(start: float, length: float) -> float:
        return float(np.clip((t - start) / length, 0.0, 1.0))

    shift_x = 120.0 * ramp(1.5, 1.0)
    angle = 12.0 * ramp(4.0, 1.0)
    scale = 1.5 * (1.0 + 0.15 * ramp(4.0, 1.0))
    rng = np.random.default_rng(seed * 100_003 + index)
    shake = rng.normal(0.0, noise_px, 2) if noise_px else np.zeros(2)
    centre = (238.0, 135.0)  # the middle of the face in the photo
    frame_from_image = cv2.getRotationMatrix2D(centre, angle, scale)
    frame_from_image[:, 2] += np.array([250.0 + shift_x, 220.0]) - np.array(centre) + shake
    return frame_from_image


def make_ground_truth_frame(index: int, fps: float = 30.0, *, noise_px: float = 0.0, sensor_noise: float = 2.0, seed: int = 0) -> np.ndarray:
    """Frame ``index`` of the ground-truth clip: the photo warped by ``ground_truth_path`` plus
    Gaussian sensor noise (a webcam is never noise-free)."""
    import cv2

    from realtime.io.demo import load_demo_face

    frame = np.full((480, 640, 3), 60, np.uint8)
    cv2.warpAffine(load_demo_face(), ground_truth_path(index, fps, noise_px=noise_px, seed=seed), (640, 480), dst=frame, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT)
    if sensor_noise:
        rng = np.random.default_rng(seed + index)
        frame = np.clip(frame + rng.normal(0, sensor_noise, frame.shape), 0, 255).astype(np.uint8)
    return frame


def make_face_landmarks(centre: tuple[float, float] = (320.0, 240.0), iod: float = 60.0) -> np.ndarray:
    """A plausible 478-point face layout (``vision.landmarks.plausible_face_layout``)."""
    from realtime.vision.landmarks import plausible_face_layout

    return plausible_face_layout(centre, iod)


def track_ground_truth_clip(frames: int = 180, *, sensor_noise: float = 8.0, model_path: Path | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detect and track the ground-truth clip; returns (raw, smoothed, truth), each (T, 478, 2).

    Truth is the first frame's landmarks mapped back to the photo, then through the known path,
    so it carries the detector's own bias on that photo but none of its frame-to-frame noise."""
    from realtime.bundle import FrameBundle
    from realtime.config import DetectConfig, TrackConfig
    from realtime.stages.detect import DetectStage
    from realtime.stages.track import TrackStage
    from realtime.vision.align import apply_affine, invert_affine

    detect = DetectStage(DetectConfig(), asynchronous=False, model_path=model_path)
    track = TrackStage(TrackConfig(birth_hits=1))
    detect.setup()
    raw, smoothed, truth = [], [], []
    reference = None
    try:
        for i in range(frames):
            bundle = track.process(detect.process(FrameBundle(i, 0, make_ground_truth_frame(i, sensor_noise=sensor_noise), i / 30)))
            if not bundle.detections:
                raise AssertionError(f"no face detected on ground-truth frame {i}")
            landmarks = bundle.detections[0].landmarks
            if reference is None:
                reference = apply_affine(invert_affine(ground_truth_path(0)), landmarks)
            raw.append(landmarks)
            smoothed.append(bundle.faces[0].landmarks)
            truth.append(apply_affine(ground_truth_path(i), reference))
    finally:
        detect.teardown()
    return np.array(raw), np.array(smoothed), np.array(truth)


def make_face_dataset(folder: Path, people: int = 4, each: int = 3, size: int = 112, *, seed: int = 0) -> Path:
    """A dataset in prepare-faces' layout (manifest + one JPEG tar shard) of random crops, ``each``
    per identity, for training and evaluation tests."""
    import io
    import json
    import tarfile

    import cv2

    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    faces = []
    with tarfile.open(folder / "shard-00000.tar", "w") as tar:
        for i in range(people * each):
            _, data = cv2.imencode(".jpg", rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
            info = tarfile.TarInfo(f"{i:08d}.jpg")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data.tobytes()))
            faces.append({"file": info.name, "shard": "shard-00000.tar", "identity": f"person{i // each}", "age": None})
    (folder / "manifest.json").write_text(json.dumps({"faces": faces}))
    return folder


def start_with_panel(command: list[str], log_path: Path, timeout_s: float = 120.0) -> tuple[Any, str | None]:
    """Start ``realtime run ... --control ...`` as a process (its output into ``log_path``) and
    wait for the panel's address it prints; (process, address or None if it never came)."""
    import re
    import subprocess
    import time

    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        found = re.search(r"control panel: (http://\S+)", log_path.read_text())
        if found:
            return process, found.group(1)
        time.sleep(0.1)
    return process, None
