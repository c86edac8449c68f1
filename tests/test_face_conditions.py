"""The face-condition measures on synthetic faces whose light and colour are known."""

import math

import numpy as np
import pytest

from realtime.eval.face_conditions import (
    cheek_patches,
    clipped_share,
    individual_typology_angle,
    side_light_stops,
    tone_band,
)
from realtime.testing import make_face_landmarks


def face(colour: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    image = np.zeros((240, 240, 3), np.uint8)
    image[:] = colour
    return image, make_face_landmarks((120.0, 110.0), 60.0)


def test_the_cheek_patches_lie_beside_the_nose_below_each_eye():
    image, landmarks = face((0, 0, 0))
    image[:, :120] = (255, 0, 0)  # the image's left half red, its right half green
    image[:, 120:] = (0, 255, 0)
    left, right = cheek_patches(image, landmarks)
    assert len(left) == len(right) > 50
    assert (left[:, 0] == 255).all() and (right[:, 1] == 255).all()


def test_side_light_is_the_log_ratio_of_the_cheeks_in_linear_light():
    image, landmarks = face((120, 120, 120))
    assert side_light_stops(image, landmarks) == pytest.approx(0.0)
    # twice the light on the left: sRGB value × 2^(1/2.2)
    image[:, :120] = round(120 * 2 ** (1 / 2.2))
    assert side_light_stops(image, landmarks) == pytest.approx(1.0, abs=0.03)
    image[:, :120], image[:, 120:] = 120, round(120 * 4 ** (1 / 2.2))
    assert side_light_stops(image, landmarks) == pytest.approx(-2.0, abs=0.03)


def test_clipped_share_counts_blown_out_skin():
    image, landmarks = face((200, 170, 150))
    assert clipped_share(image, landmarks) == 0.0
    image[:, :120] = (255, 250, 240)
    assert clipped_share(image, landmarks) == pytest.approx(0.5, abs=0.05)


@pytest.mark.parametrize(("colour", "band"), [((245, 225, 210), "very light"), ((225, 180, 150), "light"), ((150, 100, 70), "brown"), ((70, 45, 35), "dark")])
def test_the_typology_angle_orders_skin_tones(colour, band):
    image, landmarks = face(colour)
    assert tone_band(individual_typology_angle(image, landmarks)) == band


def test_tone_bands_follow_chardon():
    assert [tone_band(a) for a in (60, 50, 30, 20, 0, -40)] == ["very light", "light", "intermediate", "tan", "brown", "dark"]
    assert tone_band(math.inf) == "very light"
