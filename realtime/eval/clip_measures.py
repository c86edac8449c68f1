"""What a viewer sees of a swap on a real clip at its native resolution, as numbers: the skin's
colour cast and blotches, flicker while the head is still, and where the swapped face ranks among
many people. Pure functions of each frame's input, output and landmarks; ``bench/face_report.py``
runs them over clips and sources.

Every measure compares the output with the input frame it was made from, at the clip's own pixel
size: nothing is rescaled, so the camera's real detail is what the swap is held against.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from realtime.eval.image_measures import face_region
from realtime.vision.landmarks import inter_ocular_distance
from realtime.vision.masks import LEFT_EYE, RIGHT_EYE

LEFT_BROW = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
RIGHT_BROW = (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
OUTER_LIPS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
FEATURE_MARGIN = 0.08  # of the eye distance: lids, brow hair and lip lines stay out of "skin"

STILL_GREY = 2.0  # the input's face changed by less than this (mean |Δ| in grey levels): the head is still
PATCH_IOD = 1 / 6  # a skin patch's side, in eye distances: about a fingertip, at any face size
PATCH_SKIN_SHARE = 0.8  # a patch counts when at least this share of it is skin
BLOTCH_DELTA_E = 6.0  # a patch's colour off the face's own shift by more than this is a visible blotch


def skin_region(shape: tuple[int, ...], landmarks: np.ndarray) -> np.ndarray:
    """The face's skin: its landmarks' hull (shrunk off the seam) without the eyes, brows and lips,
    each grown by a margin. Where blotches show, and where a colour match should leave nothing."""
    region = face_region(shape, landmarks)
    features = np.zeros(shape[:2], np.uint8)
    for points in (LEFT_EYE, RIGHT_EYE, LEFT_BROW, RIGHT_BROW, OUTER_LIPS):
        cv2.fillPoly(features, [np.round(landmarks[list(points)]).astype(np.int32)], 1)
    margin = max(1, int(round(FEATURE_MARGIN * inter_ocular_distance(landmarks))))
    grown = cv2.dilate(features, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1)))
    return region & ~grown.astype(bool)


def grey_change(before: np.ndarray, after: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute grey-level change between two RGB frames inside ``mask`` (0 for an empty mask)."""
    if not mask.any():
        return 0.0
    a = cv2.cvtColor(before, cv2.COLOR_RGB2GRAY).astype(np.int16)
    b = cv2.cvtColor(after, cv2.COLOR_RGB2GRAY).astype(np.int16)
    return float(np.abs(a - b)[mask].mean())


@dataclass(frozen=True)
class Flicker:
    ratio: float | None  # the output's change over the input's, on still pairs (1.0: as steady as the camera)
    still_pairs: int
    output_change: float | None
    input_change: float | None


def flicker_on_still_pairs(inputs: list[np.ndarray], outputs: list[np.ndarray], regions: list[np.ndarray | None]) -> Flicker:
    """Frame-to-frame change of the output's face where the input's face itself changed by less
    than ``STILL_GREY``: any change the viewer sees there is the swap's own shimmer. ``regions[t]``
    is frame t's face region (None: no usable face, the pair is skipped)."""
    out_changes, in_changes = [], []
    for t in range(1, len(inputs)):
        previous, current = regions[t - 1], regions[t]
        if previous is None or current is None:
            continue
        both = previous & current
        change = grey_change(inputs[t - 1], inputs[t], both)
        if not both.any() or change >= STILL_GREY:
            continue
        in_changes.append(change)
        out_changes.append(grey_change(outputs[t - 1], outputs[t], both))
    if not in_changes:
        return Flicker(None, 0, None, None)
    output_change, input_change = float(np.mean(out_changes)), float(np.mean(in_changes))
    return Flicker(output_change / max(input_change, 1e-6), len(in_changes), output_change, input_change)


@dataclass(frozen=True)
class Blotches:
    cast: float  # ΔE (a*b* only) of the face's overall chroma shift from the input's skin: a muddy or tinted face
    deviation_p95: float  # ΔE (L*a*b*) of the worst 5 % of skin patches off the face's shift: bruises, smears
    blotch_share: float  # share of skin patches off the shift by more than BLOTCH_DELTA_E
    patches: int


def patch_colour(lab: np.ndarray, skin: np.ndarray, patch: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean (L*, a*, b*) of every ``patch``-pixel square of the face's bounding box that is mostly
    skin, and the squares' top-left corners (rows of (y, x))."""
    ys, xs = np.nonzero(skin)
    if len(ys) == 0:
        return np.zeros((0, 3)), np.zeros((0, 2), int)
    means, corners = [], []
    for y in range(ys.min(), ys.max() + 1, patch):
        for x in range(xs.min(), xs.max() + 1, patch):
            inside = skin[y : y + patch, x : x + patch]
            if inside.size == patch * patch and inside.mean() >= PATCH_SKIN_SHARE:
                means.append(lab[y : y + patch, x : x + patch][inside].mean(axis=0))
                corners.append((y, x))
    return np.array(means).reshape(-1, 3), np.array(corners, int).reshape(-1, 2)


def to_lab(image: np.ndarray) -> np.ndarray:
    """RGB uint8 → CIELAB float (L 0–100, a* and b* about ±100): distances are ΔE."""
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def blotches(input_frame: np.ndarray, output_frame: np.ndarray, landmarks: np.ndarray) -> Blotches | None:
    """The output's skin colour against the input's, patch by patch. The median shift over the
    patches is the face's overall change (its chroma part is the cast a colour match should
    remove); what is left per patch is local: a patch of the swap darker, greener, browner or
    bluer than the rest of its face moved (the smeared sockets and bruises viewers notice first;
    lightness counts, since most of them are dark). None when the face has too little skin to
    judge (turned away, tiny)."""
    skin = skin_region(input_frame.shape, landmarks)
    patch = max(3, int(round(PATCH_IOD * inter_ocular_distance(landmarks))))
    before, corners = patch_colour(to_lab(input_frame), skin, patch)
    if len(before) < 8:
        return None
    after, _ = patch_colour(to_lab(output_frame), skin, patch)
    shift = after - before
    overall = np.median(shift, axis=0)
    deviation = np.linalg.norm(shift - overall, axis=1)
    return Blotches(float(np.linalg.norm(overall[1:])), float(np.percentile(deviation, 95)), float(np.mean(deviation > BLOTCH_DELTA_E)), len(corners))


def distances(query: np.ndarray, gallery: np.ndarray, metric: str) -> np.ndarray:
    """Distance of one descriptor to each gallery row: 1 − cosine (unit vectors) or Euclidean."""
    if metric == "cosine":
        return 1.0 - gallery @ query
    if metric == "euclidean":
        return np.linalg.norm(gallery - query, axis=1)
    raise ValueError(f"unknown metric {metric!r}")


@dataclass(frozen=True)
class Judged:
    nearest: int  # the gallery row nearest the swapped face
    to_source: float  # mean distance to the source's other photos
    to_input: float  # distance to the input frame's own face (the person being replaced)

    @property
    def closer_to_source(self) -> bool:
        return self.to_source < self.to_input


def judge(swapped: np.ndarray, gallery: np.ndarray, source_photos: np.ndarray, input_face: np.ndarray, metric: str) -> Judged:
    """Where one swapped face lands: its nearest gallery face, and whether it is nearer the
    source's other photos (mean distance) than the face it replaced."""
    return Judged(
        int(np.argmin(distances(swapped, gallery, metric))),
        float(distances(swapped, source_photos, metric).mean()),
        float(distances(swapped, input_face[None, :], metric)[0]),
    )
