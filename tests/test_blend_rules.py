"""The blend's rules in vision/: masks, colour matching, paste-back, and their torch twins against them."""


import numpy as np
import pytest
import torch
from test_blend import _bundle, _identity_swap, _paste_parity  # noqa: F401

from realtime.testing import make_face_landmarks
from realtime.vision.colour import ColourSmoother, from_lab, masked_stats, to_lab, transfer
from realtime.vision.colour_torch import lab_to_rgb, rgb_to_lab
from realtime.vision.landmarks import INNER_LIPS
from realtime.vision.masks import face_mask


def test_mask_range_feather_and_holes():
    landmarks = make_face_landmarks((128, 110), 70)
    hard = face_mask(landmarks, 256, erode=0.0, blur=0.0)
    soft = face_mask(landmarks, 256, erode=0.0, blur=0.2)
    assert hard.dtype == np.float32 and 0 <= soft.min() and soft.max() <= 1
    assert set(np.unique(hard)) <= {0.0, 1.0}
    edge = lambda m: ((m > 0.02) & (m < 0.98)).sum()  # noqa: E731
    assert edge(soft) > 5 * edge(hard)  # feathered
    bigger = face_mask(make_face_landmarks((128, 110), 35) * [1, 1], 256, erode=0.0, blur=0.2)
    assert edge(bigger) < edge(soft)  # the feather scales with the face
    mouth = landmarks[list(INNER_LIPS)].mean(axis=0).round().astype(int)
    assert hard[mouth[1], mouth[0]] == 1.0
    with_mouth = face_mask(landmarks, 256, erode=0.0, blur=0.0, keep_mouth=True)
    assert with_mouth[mouth[1], mouth[0]] == 0.0
    eye = landmarks[33:34].round().astype(int)[0] + [10, 0]
    assert face_mask(landmarks, 256, erode=0.0, blur=0.0, keep_eyes=True)[eye[1], eye[0]] == 0.0
    eroded = face_mask(landmarks, 256, erode=0.2, blur=0.0)
    assert eroded.sum() < 0.8 * hard.sum()


def test_colour_transfer_moves_the_statistics():
    rng = np.random.default_rng(0)
    generated = rng.integers(60, 120, (64, 64, 3), dtype=np.uint8)
    target = np.clip(rng.normal([180, 140, 120], 12, (64, 64, 3)), 0, 255).astype(np.uint8)
    mask = np.ones((64, 64), np.float32)
    moved = from_lab(transfer(to_lab(generated), masked_stats(to_lab(generated), mask), masked_stats(to_lab(target), mask)).astype(np.float32))
    after, goal = masked_stats(to_lab(moved), mask), masked_stats(to_lab(target), mask)
    assert np.allclose(after.mean, goal.mean, atol=1.5)
    assert np.allclose(after.std, goal.std, rtol=0.25)


def test_colour_transfer_clamps_the_gain_both_ways():
    """The gain clamp (MAX_GAIN): a nearly flat generated face matched to a textured frame has its
    spread grown at most MAX_GAIN times (not blown up into noise); a noisy one matched to a flat
    frame is shrunk at most MAX_GAIN times. The mean moves to the target's either way. (The test
    above stays within the clamp: its std ratio is ~0.7.)"""
    from realtime.vision.colour import MAX_GAIN, ColourStats

    assert MAX_GAIN == 2.0
    rng = np.random.default_rng(1)
    lab = rng.normal(50.0, 1.0, (64, 64, 3))
    flat = ColourStats(np.full(3, 50.0), np.full(3, 1.0))
    textured = ColourStats(np.array([60.0, 10.0, -5.0]), np.full(3, 20.0))  # a ratio of 20: clamped to 2
    grown = transfer(lab, flat, textured)
    assert np.allclose(grown.std(axis=(0, 1)), 2.0 * lab.std(axis=(0, 1)), rtol=1e-9)
    assert np.allclose(grown.mean(axis=(0, 1)), textured.mean, atol=0.2)
    shrunk = transfer(lab, textured, flat)  # a ratio of 1/20: clamped to 1/2
    assert np.allclose(shrunk.std(axis=(0, 1)), 0.5 * lab.std(axis=(0, 1)), rtol=1e-9)
    within = transfer(lab, flat, ColourStats(np.full(3, 50.0), np.full(3, 1.5)))  # a ratio of 1.5: not clamped
    assert np.allclose(within.std(axis=(0, 1)), 1.5 * lab.std(axis=(0, 1)), rtol=1e-9)
    assert np.allclose(transfer(lab, flat, textured, max_gain=4.0).std(axis=(0, 1)), 4.0 * lab.std(axis=(0, 1)), rtol=1e-9)


def test_colour_smoother_follows_slowly():
    smoother = ColourSmoother(0.5)
    from realtime.vision.colour import ColourStats

    first = smoother.update(1, 0.0, ColourStats(np.zeros(3), np.ones(3)))
    # lightness within the flash rule's reach (EXPOSURE_JUMP_L), colour far off: both follow slowly
    later = smoother.update(1, 1 / 30, ColourStats(np.array([6.0, 30.0, 30.0]), np.ones(3)))
    assert np.allclose(first.mean, 0) and 0 < later.mean[0] < 0.6 and 0 < later.mean[1] < 3  # one frame moves it ~6%
    smoother.forget(set())
    assert smoother.state == {}


def test_torch_lab_matches_opencv():
    rgb = np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    ours = rgb_to_lab(torch.from_numpy(rgb).float() / 255).numpy()
    assert np.abs(ours - to_lab(rgb)).max() < 0.6
    back = (lab_to_rgb(torch.from_numpy(ours)) * 255).round().numpy()
    assert np.abs(back - rgb).max() <= 1




def test_cpu_and_torch_paste_agree():
    assert _paste_parity("cpu") <= 3  # OpenCV's fixed-point bilinear weights vs float


@pytest.mark.parametrize("keep", [False, True])
def test_device_mask_matches_the_opencv_mask(keep):
    from realtime.vision.masks_torch import face_mask_torch

    landmarks = make_face_landmarks((128, 110), 70)
    options = {"erode": 0.05, "blur": 0.12, "keep_mouth": keep, "keep_eyes": keep}
    cpu = face_mask(landmarks, 256, **options)
    ours = face_mask_torch(landmarks, 256, "cpu", **options).numpy()
    assert ours.shape == (256, 256) and 0 <= ours.min() and ours.max() <= 1.0 + 1e-6
    assert np.abs(cpu - ours).mean() < 0.02  # polygon shrink vs morphological erosion: edges differ by a pixel


@pytest.mark.parametrize("iod", [12.0, 37.5, 60.0, 140.0, 900.0])
def test_the_torch_masks_use_the_cpu_rules_and_cap_only_what_the_gpu_must(iod):
    from realtime.stages.blend import region
    from realtime.vision import colour, masks, masks_torch

    landmarks = make_face_landmarks((128, 110), iod)
    erode, margin, radius = masks.mask_sizes(iod, 0.05, 0.12)
    t_erode, t_margin, t_sigma = masks_torch.mask_sizes(landmarks, 0.05, 0.12)
    assert (t_erode, t_margin) == (erode, margin)
    assert t_sigma == min(radius, masks_torch.MAX_BLUR_RADIUS) / 2.0
    assert region.MIN_STATS_PIXELS is colour.MIN_STATS_PIXELS and region.MAX_GAIN is colour.MAX_GAIN
    assert colour.smoothing_weight(0.5, 0.5) == pytest.approx(1 - np.exp(-1)) and colour.smoothing_weight(0.1, 0.0) == 1.0
