"""The face report's measures (skin blotches, still-head flicker, identity ranking), its summary
of pairs, and the evaluation split kept in the repository."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from realtime.eval.clip_measures import (
    BLOTCH_DELTA_E,
    LEFT_BROW,
    OUTER_LIPS,
    RIGHT_BROW,
    blotches,
    distances,
    flicker_on_still_pairs,
    grey_change,
    judge,
    skin_region,
)
from realtime.eval.clip_report import PairReadings, failing_share, markdown_table, means, pair_row, worst_pairs
from realtime.eval.face_split import GALLERY_SIZE, FaceSplit, check_split, draw_split, load_split, missing_data
from realtime.testing import make_face_landmarks

ROOT = Path(__file__).resolve().parents[1]
SIZE = 320
IOD = 60.0
CENTRE = (160.0, 130.0)


def face_landmarks() -> np.ndarray:
    """The test layout with brows and outer lips placed too (the skin excludes them)."""
    points = make_face_landmarks(CENTRE, IOD)
    cx, cy = CENTRE
    for indices, x in ((LEFT_BROW, cx - IOD / 2), (RIGHT_BROW, cx + IOD / 2)):
        angles = np.linspace(0, 2 * np.pi, len(indices), endpoint=False)
        points[list(indices)] = np.stack([x + 0.3 * IOD * np.cos(angles), cy - 0.5 * IOD + 0.06 * IOD * np.sin(angles)], axis=1)
    angles = np.linspace(0, 2 * np.pi, len(OUTER_LIPS), endpoint=False)
    points[list(OUTER_LIPS)] = np.stack([cx + 0.42 * IOD * np.cos(angles), cy + 0.75 * IOD + 0.16 * IOD * np.sin(angles)], axis=1)
    return points


def skin_frame(seed: int = 0) -> np.ndarray:
    """A skin-coloured frame with a little sensor noise."""
    rng = np.random.default_rng(seed)
    frame = np.empty((SIZE, SIZE, 3), np.float64)
    frame[:] = (200, 150, 120)
    return np.clip(frame + rng.normal(0, 1.0, frame.shape), 0, 255).astype(np.uint8)


# --- skin region -------------------------------------------------------------


def test_skin_region_is_the_cheeks_and_forehead_not_the_eyes_brows_or_lips() -> None:
    landmarks = face_landmarks()
    skin = skin_region((SIZE, SIZE, 3), landmarks)
    cx, cy = CENTRE

    def at(x: float, y: float) -> bool:
        return bool(skin[int(round(y)), int(round(x))])

    assert at(cx - 0.6 * IOD, cy + 0.3 * IOD) and at(cx + 0.6 * IOD, cy + 0.3 * IOD)  # cheeks
    assert not at(cx - IOD / 2, cy - 0.2 * IOD) and not at(cx + IOD / 2, cy - 0.2 * IOD)  # eyes
    assert not at(cx - IOD / 2, cy - 0.5 * IOD) and not at(cx + IOD / 2, cy - 0.5 * IOD)  # brows
    assert not at(cx, cy + 0.75 * IOD)  # lips
    assert not at(5, 5)  # outside the face


# --- flicker ------------------------------------------------------------------


def test_grey_change_reads_the_mean_change_inside_the_mask_only() -> None:
    a = np.full((10, 10, 3), 100, np.uint8)
    b = a.copy()
    b[:5] += 3
    b[5:] += 50
    top = np.zeros((10, 10), bool)
    top[:5] = True
    assert grey_change(a, b, top) == pytest.approx(3.0, abs=0.5)
    assert grey_change(a, b, np.zeros((10, 10), bool)) == 0.0


def test_flicker_counts_only_pairs_where_the_input_face_is_still() -> None:
    region = np.ones((8, 8), bool)
    still = [np.full((8, 8, 3), 100 + (t % 2), np.uint8) for t in range(6)]  # the camera's 1-level noise
    moving = [np.full((8, 8, 3), 100 + 10 * t, np.uint8) for t in range(6)]  # the head moves: ≥ 2 levels a frame
    shimmer = [np.full((8, 8, 3), 100 + 4 * (t % 2), np.uint8) for t in range(6)]  # the swap changes 4 levels a frame
    reading = flicker_on_still_pairs(still, shimmer, [region] * 6)
    assert reading.still_pairs == 5
    assert reading.ratio == pytest.approx(4.0, rel=0.2)
    assert flicker_on_still_pairs(moving, shimmer, [region] * 6).still_pairs == 0
    assert flicker_on_still_pairs(moving, shimmer, [region] * 6).ratio is None


def test_flicker_skips_pairs_with_a_frame_that_had_no_usable_face() -> None:
    region = np.ones((8, 8), bool)
    frames = [np.full((8, 8, 3), 100 + (t % 2), np.uint8) for t in range(5)]
    reading = flicker_on_still_pairs(frames, frames, [region, None, region, region, region])
    assert reading.still_pairs == 2  # (0,1) and (1,2) touch the frame without a face
    assert reading.ratio == pytest.approx(1.0)


# --- blotches -----------------------------------------------------------------


def test_a_uniform_colour_shift_is_a_cast_and_no_blotch() -> None:
    landmarks = face_landmarks()
    frame = skin_frame()
    tinted = np.clip(frame.astype(np.int16) + (-12, 0, 12), 0, 255).astype(np.uint8)  # bluer all over
    reading = blotches(frame, tinted, landmarks)
    assert reading is not None
    assert reading.cast > 5
    assert reading.deviation_p95 < 1.5
    assert reading.blotch_share == 0.0


def test_a_dark_patch_under_an_eye_is_a_blotch_and_no_cast() -> None:
    landmarks = face_landmarks()
    frame = skin_frame()
    bruised = frame.copy()
    cx, cy = CENTRE
    y, x = int(cy + 0.15 * IOD), int(cx - 0.75 * IOD)
    bruised[y : y + 14, x : x + 22] = (120, 110, 80)  # an olive-brown patch on the cheek
    reading = blotches(frame, bruised, landmarks)
    assert reading is not None
    assert reading.cast < 1.0
    assert reading.deviation_p95 > BLOTCH_DELTA_E
    assert 0 < reading.blotch_share < 0.2
    same = blotches(frame, frame, landmarks)
    assert same is not None and same.deviation_p95 < 0.5


def test_a_face_too_small_to_hold_skin_patches_is_not_judged() -> None:
    tiny = make_face_landmarks((20.0, 20.0), 4.0)
    frame = skin_frame()
    assert blotches(frame, frame, tiny) is None


# --- identity -----------------------------------------------------------------


def test_judge_finds_the_nearest_gallery_face_and_compares_source_with_input() -> None:
    gallery = np.eye(4)
    swapped = np.array([0.0, 0.9, 0.1, 0.0])
    swapped /= np.linalg.norm(swapped)
    verdict = judge(swapped, gallery, gallery[[1]], gallery[2], "cosine")
    assert verdict.nearest == 1
    assert verdict.closer_to_source
    worse = judge(swapped, gallery, gallery[[3]], gallery[1], "cosine")  # nearer the face it replaced
    assert not worse.closer_to_source
    euclid = judge(np.array([0.0, 0.0]), np.array([[3.0, 0.0], [1.0, 0.0]]), np.array([[1.0, 0.0], [0.0, 3.0]]), np.array([0.0, 1.5]), "euclidean")
    assert euclid.nearest == 1 and euclid.to_source == pytest.approx(2.0) and euclid.closer_to_source is False


def test_distances_refuses_an_unknown_metric() -> None:
    with pytest.raises(ValueError, match="metric"):
        distances(np.zeros(2), np.zeros((1, 2)), "manhattan")


# --- the report's summary -----------------------------------------------------


def readings(source: str, clip: str, closer: list[bool], sharp: float) -> PairReadings:
    r = PairReadings(source, clip, frames=10, usable=10, sharpness=[sharp, sharp])
    for c in closer:
        r.judged("dlib", top1=c, target_top1=not c, closer=c, to_source=0.5 if c else 0.7)
        r.judged("ours", top1=c, target_top1=False, closer=c, to_source=0.4)
    return r


def test_pair_row_reads_shares_and_shows_our_cosine_not_its_distance() -> None:
    row = pair_row(readings("A", "c1", [True, True, False, True], 0.6))
    assert row["dlib_closer"] == 0.75 and row["dlib_target_top1"] == 0.25
    assert row["dlib_to_source"] == pytest.approx(0.55)
    assert row["ours_cosine"] == pytest.approx(0.6)
    assert row["judged_frames"] == 4 and row["sharpness"] == 0.6
    empty = pair_row(PairReadings("A", "c2"))
    assert empty["dlib_closer"] is None and empty["flicker"] is None and empty["flicker_output_grey"] is None
    shimmer = PairReadings("A", "c3", flicker=8.0, flicker_grey=(2.0, 0.25))
    assert pair_row(shimmer)["flicker_output_grey"] == 2.0 and pair_row(shimmer)["flicker_input_grey"] == 0.25


def test_worst_pair_is_the_lowest_where_higher_is_better_and_the_highest_elsewhere() -> None:
    rows = [pair_row(readings("A", "c1", [True] * 4, 0.9)), pair_row(readings("B", "c1", [False] * 4, 0.3)), pair_row(readings("A", "c2", [True, False] * 2, 0.5))]
    worst = worst_pairs(rows)
    assert worst["dlib_closer"] == {"source": "B", "clip": "c1", "value": 0.0}
    assert worst["sharpness"]["source"] == "B"
    assert worst["dlib_to_source"] == {"source": "B", "clip": "c1", "value": 0.7}  # distance: higher is worse
    assert "flicker" not in worst  # nobody measured it
    by_source = means(rows, "source")
    assert by_source["A"]["dlib_closer"] == pytest.approx(0.75) and by_source["B"]["dlib_closer"] == 0.0
    assert failing_share(rows, "dlib_closer", 0.9) == pytest.approx(2 / 3, abs=1e-3)
    table = markdown_table(rows, ("dlib_closer", "flicker"))
    assert "| **worst pair** | 0.0 | – |" in table and "| B × c1 | 0.0 | – |" in table


# --- the split ----------------------------------------------------------------


def test_the_committed_split_judges_nobody_it_lets_training_use() -> None:
    split = load_split(ROOT / "bench" / "face_split.json")
    assert not set(split.eval_clips) & set(split.train_clips)
    assert split.gallery_size() >= GALLERY_SIZE
    assert split.how  # the rule the sources were picked by travels with them


def test_check_split_names_the_rule_broken() -> None:
    distractors = tuple(f"p{i}" for i in range(97))
    good = FaceSplit(("c1",), ("c2",), ("s1", "s2"), distractors)
    check_split(good)
    with pytest.raises(ValueError, match="both judged and trained"):
        check_split(FaceSplit(("c1",), ("c1",), ("s1", "s2"), distractors))
    with pytest.raises(ValueError, match="twice"):
        check_split(FaceSplit(("c1",), ("c2",), ("s1", "p0"), distractors))
    with pytest.raises(ValueError, match="gallery"):
        check_split(FaceSplit(("c1",), ("c2",), ("s1", "s2"), distractors[:50]))


def fake_lfw(root: Path, people: int) -> Path:
    for i in range(people):
        folder = root / f"Person_{i:03d}"
        folder.mkdir(parents=True)
        for j in range(1 + i % 5):  # 1 to 5 photos
            (folder / f"Person_{i:03d}_{j:04d}.jpg").write_bytes(b"")
    return root


def test_draw_split_keeps_the_chosen_sources_and_draws_held_out_distractors(tmp_path: Path) -> None:
    lfw = fake_lfw(tmp_path / "lfw", 200)
    sources = ("Person_003", "Person_004")  # 4 and 5 photos
    split = draw_split(lfw, ("c1", "c2"), ("c3",), sources, seed=1, how="test")
    assert split.sources == sources and split.gallery_size() == GALLERY_SIZE
    assert all(int(name[-3:]) % 5 != 0 for name in split.distractors)  # people with one photo may train: never in the gallery
    assert draw_split(lfw, ("c1", "c2"), ("c3",), sources, seed=1, how="test") == split
    with pytest.raises(ValueError, match="4\\+ photos"):
        draw_split(lfw, ("c1",), (), ("Person_001",), seed=1, how="")
    with pytest.raises(ValueError, match="distractors"):
        draw_split(fake_lfw(tmp_path / "small", 60), ("c1",), (), ("Person_004",), seed=1, how="")
    save = tmp_path / "split.json"
    save.write_text(json.dumps({**split.__dict__}))
    assert load_split(save) == split


def test_missing_data_names_what_this_machine_lacks(tmp_path: Path) -> None:
    lfw = fake_lfw(tmp_path / "lfw", 130)
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "c1.mp4").write_bytes(b"")
    split = draw_split(lfw, ("c1", "c2"), (), ("Person_004",), seed=0, how="")
    missing = missing_data(split, lfw, videos)
    assert missing == [f"{videos / 'c2'}.mp4"]
