"""The failure-mode bench's grouping (realtime.eval.failure_modes) and the clip bench's synthetic
light (realtime.eval.relight)."""

import math

import numpy as np
import pytest

from realtime.eval.failure_modes import group_tests, slug, summarise_group
from realtime.eval.relight import relight


def _trial(index: int, **readings: object) -> dict[str, object]:
    return {"trial": index, "yaw": 0.0, "side_light_stops": 0.0, "clipped": 0.0, "target_ita": 50.0, "source_ita": 50.0, **readings}


def test_a_persons_label_on_a_target_places_the_next_trials_source():
    tests = group_tests({"dark_skin": [2], "glasses": [0]}, trials=4)
    trials = [_trial(i) for i in range(4)]
    assert [t["trial"] for t in trials if tests["target dark skin (labelled)"](t)] == [2]
    assert [t["trial"] for t in trials if tests["source dark skin (labelled)"](t)] == [3]
    assert [t["trial"] for t in trials if tests["neither dark skin (labelled)"](t)] == [0, 1]
    assert tests["target with glasses"](trials[0]) and not tests["target with glasses"](trials[1])
    assert "target with beard" not in tests  # no labels, no group


def test_measured_groups_leave_out_trials_without_a_reading():
    tests = group_tests(None, trials=3)
    assert tests["far turned (|yaw| ≥ 0.3)"](_trial(0, yaw=-0.4)) is True
    assert tests["far turned (|yaw| ≥ 0.3)"](_trial(0, yaw=None)) is None
    assert tests["strong side light (≥ 1 stop)"](_trial(0, side_light_stops=-1.2)) is True


def test_group_rates_count_a_failed_swap_as_missed():
    members = [
        {"ours_finds_source": True, "dlib_finds_source": True, "dlib_source_photo_finds_source": True, "dlib_to_source": 0.5, "dlib_to_target": 0.8, "nme": 0.03, "ours_to_source": 0.6},
        {"ours_finds_source": None, "dlib_finds_source": None, "dlib_source_photo_finds_source": True, "dlib_to_source": None, "dlib_to_target": None, "nme": None, "ours_to_source": None},
    ]
    group = summarise_group(members)
    assert group["trials"] == 2 and group["ours_finds_source"] == 0.5 and group["dlib_calls_it_the_source"] == 0.5
    assert group["dlib_source_photo_finds_source"] == 1.0 and group["nme"] == 0.03


def test_group_file_names_are_distinct():
    names = list(group_tests({"dark_skin": [], "glasses": [], "beard": []}, trials=2))
    assert len({slug(n) for n in names}) == len(names)


def test_side_light_brightens_one_side_and_darkens_the_other_in_linear_light():
    frame = np.full((10, 1920, 3), 100, np.uint8)
    lit = relight(frame, "side").astype(float)
    base = (100 / 255) ** 2.2
    right, left = ((lit[0, x, 0] / 255) ** 2.2 for x in (960 + 300, 960 - 300))
    stops = 2.0 * math.tanh(1.0)
    assert math.log2(right / base) == pytest.approx(stops, abs=0.05) and math.log2(left / base) == pytest.approx(-stops, abs=0.05)
    assert lit[0, 960, 0] == pytest.approx(100, abs=1)
    assert (relight(frame, "none") == frame).all()
    bright = relight(frame, "bright").astype(float)
    assert math.log2(((bright[0, 0, 0] / 255) ** 2.2) / base) == pytest.approx(1.3, abs=0.05)
    assert relight(np.full((2, 2, 3), 250, np.uint8), "bright").max() == 255  # past white clips
