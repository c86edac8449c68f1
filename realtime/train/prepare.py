"""``realtime prepare-faces``: images and videos → aligned face crops in tar shards, for training.

Faces are found with the live path's own landmarker and aligned with its own templates, so a model
trains on exactly the crops it will see. Near-identical video frames are dropped (a talking head
held still gives the same crop many times), as are small faces, strongly turned faces and — for
UTKFace files, whose names start with the age — anyone under 18. Crops are JPEG files in tar
shards of at most ``shard_mib`` MiB (small enough to travel to a GPU machine), with a manifest.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import tarfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from realtime.config import DetectConfig
from realtime.errors import ConfigError, SourceError
from realtime.train.data import save_landmarks
from realtime.train.options import PrepareOptions
from realtime.vision.align import apply_affine, crop_from_frame_matrix, warp_crop
from realtime.vision.landmarks import LANDMARK_COUNT, five_points, inter_ocular_distance, yaw_proxy

log = logging.getLogger("realtime")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".ts"}
UTKFACE_NAME = re.compile(r"^(\d+)_(\d)_(\d)_\d+\.jpg")


@dataclass
class PrepareStats:
    files: int = 0
    frames: int = 0
    kept: int = 0
    no_face: int = 0
    too_small: int = 0
    turned: int = 0
    duplicates: int = 0
    minors: int = 0
    unreadable: int = 0
    shards: list[str] = field(default_factory=list)


def utkface_age(path: Path) -> int | None:
    """UTKFace names files ``<age>_<gender>_<race>_<timestamp>.jpg[.chip.jpg]``."""
    match = UTKFACE_NAME.match(path.name)
    return int(match.group(1)) if match else None


def thumbnail(crop: np.ndarray) -> np.ndarray:
    return cv2.resize(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)


def list_inputs(inputs: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for item in inputs:
        if item.is_dir():
            # os.walk follows linked folders (a dataset assembled from links); rglob would not
            found = [Path(root) / name for root, _, names in os.walk(item, followlinks=True) for name in names]
            files += sorted(p for p in found if p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
        elif item.is_file():
            files.append(item)
        else:
            raise SourceError(f"input {item} does not exist", "name image folders or video files")
    if not files:
        raise SourceError("no images or videos found in the inputs", f"use {', '.join(sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES))} files")
    return files


def identity_label(path: Path, roots: Sequence[Path]) -> str | None:
    """LFW-style folders name the person; a video is one person (its name); UTKFace has no
    identities (None)."""
    if utkface_age(path) is not None:
        return None
    for root in roots:
        if root.is_dir() and root in path.parents and path.parent != root:
            return path.parent.name
    return path.stem


class ShardWriter:
    """Appends JPEGs to ``shard-NNNNN.tar`` files, starting a new one before ``limit`` bytes."""

    def __init__(self, folder: Path, limit_bytes: int) -> None:
        self.folder = folder
        self.limit = limit_bytes
        self.index = -1
        self.tar: tarfile.TarFile | None = None
        self.size = 0
        self.names: list[str] = []

    def add(self, name: str, data: bytes) -> str:
        if self.tar is None or self.size + len(data) + 1024 > self.limit:
            self._next()
        assert self.tar is not None
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = 0  # reproducible shards
        self.tar.addfile(info, io.BytesIO(data))
        self.size += len(data) + 1024  # header and padding, rounded up
        return self.names[-1]

    def _next(self) -> None:
        self.close()
        self.index += 1
        name = f"shard-{self.index:05d}.tar"
        self.tar = tarfile.open(self.folder / name, "w")
        self.size = 0
        self.names.append(name)

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()
            self.tar = None


def _frames(path: Path, stride: int) -> Iterator[tuple[int, np.ndarray]]:
    if path.suffix.lower() in IMAGE_SUFFIXES:
        bgr = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SourceError(f"{path} is not a readable image", "remove or replace it")
        yield 0, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        return
    from realtime.config import CaptureConfig
    from realtime.io.sources import open_source

    source = open_source(CaptureConfig(input=str(path)))
    try:
        for index, (frame, _) in enumerate(source.frames()):
            if index % stride == 0:
                yield index, frame
    finally:
        source.close()


def prepare_faces(inputs: Sequence[Path], output: Path, options: PrepareOptions | None = None, detect: DetectConfig | None = None) -> PrepareStats:
    """Write ``output``/shard-*.tar and ``output``/manifest.json; returns what was kept and why not."""
    from realtime.models.landmarker import FaceLandmarkerModel
    from realtime.models.weights import resolve_face_landmarker
    from realtime.photo import landmarker_options

    options = options or PrepareOptions()
    if output.exists() and any(output.iterdir()):
        raise ConfigError(f"output folder {output} is not empty", "choose a new folder (datasets are never overwritten)")
    files = list_inputs(inputs)
    output.mkdir(parents=True, exist_ok=True)
    detect = detect or DetectConfig(max_faces=1)
    stats = PrepareStats()
    records: list[dict[str, object]] = []
    landmarks_in_crop: list[np.ndarray] = []
    shards = ShardWriter(output, int(options.shard_mib * 2**20))
    t0 = time.perf_counter()
    for number, path in enumerate(files, 1):
        stats.files += 1
        age = utkface_age(path)
        if age is not None and age < options.min_age:
            stats.minors += 1
            continue
        label = identity_label(path, inputs)
        # One graph per file: video mode tracks across a clip's frames, and a new file starts fresh.
        model = FaceLandmarkerModel(resolve_face_landmarker(Path(detect.landmarker_model) if detect.landmarker_model else None), landmarker_options(detect))
        previous: np.ndarray | None = None
        try:
            for index, frame in _frames(path, options.video_stride):
                stats.frames += 1
                detections = model.detect(frame, index / 30.0)
                if not detections:
                    stats.no_face += 1
                    continue
                landmarks = max(detections, key=lambda d: inter_ocular_distance(d.landmarks)).landmarks
                if inter_ocular_distance(landmarks) < options.min_face_px:
                    stats.too_small += 1
                    continue
                yaw = yaw_proxy(landmarks)
                if abs(yaw) > options.max_yaw:
                    stats.turned += 1
                    continue
                crop_from_frame = crop_from_frame_matrix(five_points(landmarks), options.crop_size, options.template)
                crop = warp_crop(frame, crop_from_frame, options.crop_size)
                thumb = thumbnail(crop)
                if previous is not None and float(np.abs(thumb - previous).mean()) < options.dedup_threshold:
                    stats.duplicates += 1
                    continue
                previous = thumb
                ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, options.jpeg_quality])
                if not ok:
                    continue
                name = f"{len(records):08d}.jpg"
                shard = shards.add(name, jpeg.tobytes())
                landmarks_in_crop.append(apply_affine(crop_from_frame, landmarks).astype(np.float16))
                records.append({
                    "file": name, "shard": shard, "identity": label, "source": str(path), "frame": index,
                    "landmarks5": np.round(apply_affine(crop_from_frame, five_points(landmarks)), 2).tolist(),
                    "iod_px": round(inter_ocular_distance(landmarks), 1), "yaw": round(yaw, 3), "age": age,
                })
                stats.kept += 1
        except SourceError as exc:
            stats.unreadable += 1
            log.warning("skipping %s: %s", path, exc)
        finally:
            model.close()
        elapsed = time.perf_counter() - t0
        eta = elapsed / number * (len(files) - number)
        if number == len(files) or number % 25 == 0:
            print(f"[{number}/{len(files)}] {stats.kept} faces kept; ETA {eta:.0f} s", flush=True)
    shards.close()
    stats.shards = shards.names
    # every face's 478 landmarks in its crop, in manifest order (what the reenactment refiner warps by)
    save_landmarks(output, np.stack(landmarks_in_crop) if landmarks_in_crop else np.zeros((0, LANDMARK_COUNT, 2), np.float16))
    manifest = {"options": asdict(options), "stats": asdict(stats), "faces": records}
    tmp = output / ".manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, output / "manifest.json")
    return stats
