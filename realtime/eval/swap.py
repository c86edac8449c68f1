"""``realtime eval-swap`` wired up: trials from a dataset, the live path's still-image swapper,
mediapipe landmarks, our encoder and (optionally) dlib's judge, for either kind of generator.
``swap_measures.py`` holds the measures; the CLI prints the result."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from realtime.errors import ConfigError

log = logging.getLogger("realtime")


def evaluate_generator(
    faces: Path, generator: Path, identity_encoder: Path, *, identities: int = 100, judge: bool = True, person: Path | None = None, byo: dict[str, Any] | None = None,
    seed: int = 0, on_swap: Callable[[int, dict[str, np.ndarray], dict[str, Any]], None] | None = None,
) -> tuple[dict[str, Any], list[tuple[np.ndarray, ...]]]:
    """The eval-swap result (JSON-ready, with each trial's readings under ``per_trial``) and example
    (source, target, swap) images. ``on_swap``: as for ``swap_measures.measure`` (AEI-Net trials)."""
    from realtime.bundle import Detection
    from realtime.config import DetectConfig, build_config
    from realtime.eval.swap_measures import (
        DlibJudge,
        make_trials,
        measure,
        measure_person,
        original_paths,
        per_trial,
        person_frames,
        summarise,
    )
    from realtime.generators import GeneratorRequest, takes_identity
    from realtime.photo import detect_faces_in_image, embed_face, load_identity_encoder, read_image
    from realtime.still import StillSwapper

    try:
        trials = make_trials(original_paths(faces), identities, seed)
    except ValueError as exc:
        raise ConfigError(f"{faces}: {exc}", "use a dataset of more people (LFW folders) or fewer --identities") from None
    missing = [t.source for t in trials if not t.source.is_file()][:1]
    if missing:
        raise ConfigError(f"original image {missing[0]} named in {faces}/manifest.json is not there", "run from the folder prepare-faces ran in")
    byo = byo or {}  # users' ONNX files: generator_profile, identity_converter, pixel_boost (as for run)
    per_target = not takes_identity(GeneratorRequest(generator, 0, byo.get("generator_profile"), Path(byo["identity_converter"]) if byo.get("identity_converter") else None, byo.get("pixel_boost", 1)))
    if per_target and person is None:
        raise ConfigError(f"{generator} is a per-target model: its person's look must be given", "add --person VIDEO (a clip of the person it was trained on)")
    try:
        dlib_judge = DlibJudge() if judge else None
    except ImportError as exc:
        raise ConfigError(str(exc), "or pass --no-judge") from None
    encoder = load_identity_encoder(identity_encoder)
    detect = DetectConfig(max_faces=1)

    def landmarks_of(image: np.ndarray) -> np.ndarray | None:
        found = detect_faces_in_image(image, detect)
        return max(found, key=lambda d: np.ptp(d.landmarks[:, 0])).landmarks if found else None

    def embed(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        return torch.nn.functional.normalize(embed_face(image, landmarks, encoder), dim=-1).numpy()  # users' ArcFace gives raw vectors

    t0 = time.monotonic()

    def progress(done: int, total: int) -> None:
        if done % 10 == 0 or done == total:
            rate = done / (time.monotonic() - t0)
            log.info("[%d/%d] trials, ETA %.0f s", done, total, (total - done) / rate)

    header: dict[str, Any] = {"faces": str(faces), "generator": str(generator), "identity_encoder": str(identity_encoder), "seed": seed}
    if per_target:
        assert person is not None
        swapper = StillSwapper(build_config(overrides={"generator": str(generator), "target_identity": 0, "colour": "per_frame", **byo}))
        try:
            result, examples = measure_person(
                trials, person_frames(person), lambda image, landmarks: swapper.swap_faces(image, [Detection(landmarks)]).frame,
                landmarks_of, embed, dlib_judge, read_image, progress,
            )
        finally:
            swapper.close()
        return {**header, "person": str(person), **result}, examples
    overrides = {"generator": str(generator), "identity_encoder": str(identity_encoder), "source": str(trials[0].source), "colour": "per_frame", **byo}
    swapper = StillSwapper(build_config(overrides=overrides))

    def swap(source: np.ndarray, source_landmarks: np.ndarray, target: np.ndarray, target_landmarks: np.ndarray) -> np.ndarray:
        swapper.swap.use_source_embedding(embed_face(source, source_landmarks, encoder))
        return swapper.swap_faces(target, [Detection(target_landmarks)]).frame

    try:
        measured, examples = measure(trials, swap, landmarks_of, embed, dlib_judge, read_image, progress, on_swap)
    finally:
        swapper.close()
    return {**header, **summarise(measured), "failures": measured.failures[:20], "per_trial": per_trial(measured, trials)}, examples


def describe_result(result: dict[str, Any]) -> list[str]:
    """The lines ``eval-swap`` prints."""
    lines = []
    per_target = "person" in result
    for name in ("ours", "judge_dlib"):
        if name not in result:
            continue
        r = result[name]
        if per_target:
            lines.append(f"{name}: swap→person {r['swap_to_person']:.3f} (same person {r['same_person_baseline']:.3f}, others {r['different_person_baseline']:.3f}), "
                         f"swap→input {r['swap_to_input']:.3f}, retrieval {r['retrieval_person_rate']:.0%}, closer to the person {r['closer_to_person_rate']:.0%}")
        else:
            lines.append(f"{name}: swap→source {r['swap_to_source']:.3f} (same person {r['same_person_baseline']:.3f}, different {r['different_person_baseline']:.3f}), "
                         f"swap→target {r['swap_to_target']:.3f}, retrieval {r['retrieval_source_rate']:.0%}, closer to source {r['closer_to_source_rate']:.0%}")
    attributes = result["attributes"]
    if per_target:
        lines.append(f"landmarks: swap vs input NME {attributes['swap_to_input_nme_mean']}")
    else:
        lines.append(f"landmarks: swap vs target NME {attributes['swap_to_target_nme_mean']:.3f} (source vs target {attributes['source_to_target_nme_mean']:.3f})")
    return lines
