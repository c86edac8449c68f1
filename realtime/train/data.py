"""Reading datasets written by ``prepare-faces``: the manifest plus JPEG crops in tar shards."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from realtime.errors import ConfigError


@dataclass(frozen=True)
class FaceRecord:
    dataset: Path
    shard: str
    file: str
    identity: str | None
    age: int | None
    row: int = -1  # the face's place in its manifest (and in the dataset's landmarks.npy)


def read_manifest(dataset: Path) -> dict[str, Any]:
    path = dataset / "manifest.json"
    if not path.is_file():
        raise ConfigError(f"{dataset} is not a prepared face dataset (no manifest.json)", "make one with: realtime prepare-faces --input … --output DATASET")
    return json.loads(path.read_text())


def face_records(datasets: Sequence[Path], keep: Callable[[FaceRecord], bool] | None = None) -> list[FaceRecord]:
    records = []
    for dataset in datasets:
        for row, face in enumerate(read_manifest(dataset)["faces"]):
            record = FaceRecord(dataset, face["shard"], face["file"], face.get("identity"), face.get("age"), row)
            if keep is None or keep(record):
                records.append(record)
    return records


def load_crops(records: list[FaceRecord]) -> np.ndarray:
    """(N, S, S, 3) uint8 RGB, in the order of ``records`` (each shard is read once). Datasets
    prepared at different crop sizes (one template, scaled) are brought to the largest: video
    frames keep their native detail beside photos that never had it."""
    wanted: dict[tuple[Path, str], dict[str, int]] = {}
    for index, record in enumerate(records):
        wanted.setdefault((record.dataset, record.shard), {})[record.file] = index
    crops: list[np.ndarray | None] = [None] * len(records)
    for (dataset, shard), files in wanted.items():
        with tarfile.open(dataset / shard) as tar:
            for member in tar:
                found = files.get(member.name)
                if found is None:
                    continue
                handle = tar.extractfile(member)
                assert handle is not None
                image = cv2.imdecode(np.frombuffer(handle.read(), np.uint8), cv2.IMREAD_COLOR)
                if image is not None:  # an undecodable crop is reported missing below
                    crops[found] = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    missing = [records[i].file for i, c in enumerate(crops) if c is None]
    if missing:
        raise ConfigError(f"{len(missing)} crops listed in the manifest are missing from the shards (first: {missing[0]})", "prepare the dataset again")
    size = max(crop.shape[0] for crop in crops if crop is not None) if crops else 0
    return np.stack([crop if crop.shape[0] == size else cv2.resize(crop, (size, size), interpolation=cv2.INTER_CUBIC) for crop in crops if crop is not None])


LANDMARKS_FILE = "landmarks.npy"


def save_landmarks(dataset: Path, landmarks: np.ndarray) -> None:
    """A dataset's (N, 478, 2) landmarks in crop pixels, FP16, in manifest order."""
    np.save(dataset / LANDMARKS_FILE, landmarks.astype(np.float16), allow_pickle=False)


def load_landmarks(records: list[FaceRecord], size: int) -> np.ndarray:
    """(N, 478, 2) float32 landmarks of ``records``, in pixels of a ``size`` crop (each dataset's
    scaled from its own crop size, as ``load_crops`` scales the crops)."""
    out = np.zeros((len(records), 478, 2), np.float32)
    cache: dict[Path, tuple[np.ndarray, float]] = {}
    for index, record in enumerate(records):
        if record.dataset not in cache:
            path = record.dataset / LANDMARKS_FILE
            if not path.is_file():
                raise ConfigError(f"{record.dataset} has no {LANDMARKS_FILE} (prepared before landmarks were kept)", "prepare the dataset again with realtime prepare-faces")
            table = np.load(path, allow_pickle=False)  # data only: a planted file can run no code
            crop = read_manifest(record.dataset)["options"]["crop_size"]
            if table.ndim != 3 or table.shape[1:] != (478, 2) or len(table) != len(read_manifest(record.dataset)["faces"]):
                raise ConfigError(f"{path} does not match its manifest ({table.shape})", "prepare the dataset again")
            cache[record.dataset] = (table, size / crop)
        table, scale = cache[record.dataset]
        # crops are resized edge to edge (OpenCV): a pixel centre x lands at (x + ½)·scale − ½
        out[index] = (table[record.row].astype(np.float32) + 0.5) * scale - 0.5
    return out


def identity_counts(records: list[FaceRecord]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records:
        if record.identity is not None:
            counts[record.identity] = counts.get(record.identity, 0) + 1
    return counts


def write_subset(source: Path, output: Path, keep: Callable[[FaceRecord], bool]) -> int:
    """A new dataset with the faces of ``source`` that ``keep`` accepts (one shard; for sets small
    enough to travel to a GPU machine). Returns the number of faces written."""
    manifest = read_manifest(source)
    chosen = {(f["shard"], f["file"]): f for f in manifest["faces"] if keep(FaceRecord(source, f["shard"], f["file"], f.get("identity"), f.get("age")))}
    output.mkdir(parents=True, exist_ok=False)
    kept = []
    with tarfile.open(output / "shard-00000.tar", "w") as out:
        for shard in sorted({shard for shard, _ in chosen}):
            with tarfile.open(source / shard) as tar:
                for member in tar:
                    face = chosen.get((shard, member.name))
                    handle = tar.extractfile(member) if face is not None else None
                    if face is None or handle is None:
                        continue
                    payload = handle.read()
                    info = tarfile.TarInfo(member.name)
                    info.size = len(payload)
                    out.addfile(info, io.BytesIO(payload))
                    kept.append({**face, "shard": "shard-00000.tar"})
    (output / "manifest.json").write_text(json.dumps({**manifest, "faces": kept, "subset_of": str(source)}, indent=1))
    return len(kept)


def merge_datasets(sources: list[Path], output: Path, *, jpeg_quality: int | None = None, crop_size: int | None = None) -> int:
    """One single-shard dataset holding every face of ``sources`` (re-encoded at ``jpeg_quality``
    and shrunk to ``crop_size`` when given, to make a training set small enough to travel to a GPU
    machine). File names are renumbered; manifest entries keep their fields and say where they
    came from; the manifest is compact JSON."""
    if output.exists():
        raise FileExistsError(f"{output} exists: merge into a new folder")
    records = face_records(sources)
    crops = load_crops(records)
    scale = 1.0 if crop_size is None else crop_size / crops.shape[1]  # landmarks follow the crops
    if crop_size is not None and crop_size != crops.shape[1]:
        if crop_size > crops.shape[1]:
            raise ConfigError(f"cannot merge {crops.shape[1]} px crops into a {crop_size} px dataset: that would invent detail", f"use --crop-size {crops.shape[1]} or less")
        crops = np.stack([cv2.resize(crop, (crop_size, crop_size), interpolation=cv2.INTER_AREA) for crop in crops])
    manifests = {source: {(f["shard"], f["file"]): f for f in read_manifest(source)["faces"]} for source in sources}
    faces = []
    output.mkdir(parents=True)
    with tarfile.open(output / "shard-00000.tar", "w") as out:
        for index, (record, crop) in enumerate(zip(records, crops, strict=True)):
            params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if jpeg_quality is not None else [cv2.IMWRITE_JPEG_QUALITY, 95]
            ok, payload = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), params)
            if not ok:
                raise ConfigError(f"cannot encode face {record.file} of {record.dataset}", "check the dataset")
            info = tarfile.TarInfo(f"{index:08d}.jpg")
            info.size = len(payload)
            out.addfile(info, io.BytesIO(payload.tobytes()))
            entry = manifests[record.dataset][(record.shard, record.file)]
            moved = {"landmarks5": np.round(np.asarray(entry["landmarks5"]) * scale, 2).tolist()} if "landmarks5" in entry and scale != 1.0 else {}
            faces.append({**entry, **moved, "file": info.name, "shard": "shard-00000.tar", "merged_from": f"{record.dataset}/{record.shard}/{record.file}"})
    if all((source / LANDMARKS_FILE).is_file() for source in sources):  # landmarks follow their crops
        save_landmarks(output, load_landmarks(records, int(crops.shape[1])))
    options = {"crop_size": int(crops.shape[1]), "jpeg_quality": jpeg_quality}
    (output / "manifest.json").write_text(json.dumps({"faces": faces, "merged_from": [str(s) for s in sources], "options": options}, separators=(",", ":")))
    return len(faces)
