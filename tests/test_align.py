import numpy as np
import pytest
import torch

from realtime.io.demo import make_demo_frame
from realtime.vision.align import (
    apply_affine,
    crop_from_frame_matrix,
    estimate_similarity,
    invert_affine,
    shift_affine,
    template_points,
    warp_crop,
)
from realtime.vision.align_torch import warp_crop_torch


def test_templates_are_upright_and_symmetric():
    for size in (112, 128, 256):
        for kind in ("arcface", "ffhq"):
            points = template_points(size, kind)
            assert points.shape == (5, 2)
            assert abs(points[0, 1] - points[1, 1]) < 0.01 * size  # eyes level
            assert points[0, 0] < size / 2 < points[1, 0]  # eyes either side of the centre
            assert points[2, 1] > points[0, 1] and points[3, 1] > points[2, 1]  # eyes, nose, mouth downwards
            assert ((points > 0) & (points < size)).all()
    assert np.allclose(template_points(256) / 256, template_points(128) / 128)
    eye_gap = lambda p: p[1, 0] - p[0, 0]  # noqa: E731
    assert eye_gap(template_points(256, "ffhq")) < eye_gap(template_points(256, "arcface"))  # looser


def test_similarity_recovers_a_known_transform():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 500, (5, 2))
    angle, scale = 0.3, 1.7
    known = np.array([[scale * np.cos(angle), -scale * np.sin(angle), 12.0], [scale * np.sin(angle), scale * np.cos(angle), -40.0]])
    assert np.allclose(estimate_similarity(src, apply_affine(known, src)), known, atol=1e-9)
    assert np.allclose(invert_affine(invert_affine(known)), known)
    assert np.allclose(apply_affine(invert_affine(known), apply_affine(known, src)), src)


def test_closed_form_inverse_and_shift_match_the_3x3_products():
    rng = np.random.default_rng(2)
    for _ in range(200):
        matrix = rng.normal(size=(2, 3)) * [[1.0, 1.0, 300.0], [1.0, 1.0, 300.0]]
        full = np.vstack([matrix, [0.0, 0.0, 1.0]])
        assert np.allclose(invert_affine(matrix), np.linalg.inv(full)[:2])
        dx, dy = rng.uniform(0, 1000, 2)
        assert np.allclose(shift_affine(matrix, dx, dy), (full @ np.array([[1.0, 0, dx], [0, 1.0, dy], [0, 0, 1.0]]))[:2])
    before = np.array([[2.0, 0.0, 5.0], [0.0, 2.0, 7.0]], np.float32)
    shift_affine(before, 1.0, 1.0)
    assert before[0, 2] == 5.0  # a new matrix, the input untouched


def test_inter_ocular_distance_is_the_distance_of_the_five_point_eyes():
    from realtime.vision.landmarks import five_points, inter_ocular_distance

    landmarks = np.random.default_rng(3).uniform(0, 500, (478, 2))
    eyes = five_points(landmarks)[:2]
    assert np.isclose(inter_ocular_distance(landmarks), np.linalg.norm(eyes[1] - eyes[0]))


def test_similarity_excludes_reflections():
    src = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    mirrored = src * np.array([-1.0, 1.0])
    matrix = estimate_similarity(src, mirrored)
    assert np.linalg.det(matrix[:, :2]) > 0


def test_warp_then_unwarp_is_identity_away_from_the_border():
    frame = make_demo_frame(0).astype(np.float32)
    landmarks_5 = np.array([[300.0, 170.0], [350.0, 172.0], [326.0, 205.0], [305.0, 235.0], [346.0, 236.0]])
    crop_from_frame = crop_from_frame_matrix(landmarks_5, 256)
    crop = warp_crop(frame, crop_from_frame, 256)
    import cv2

    restored = cv2.warpAffine(crop, invert_affine(crop_from_frame), (640, 480), flags=cv2.INTER_LINEAR)
    inside = np.zeros((256, 256), np.uint8)
    inside[16:-16, 16:-16] = 1
    mask = cv2.warpAffine(inside, invert_affine(crop_from_frame), (640, 480), flags=cv2.INTER_NEAREST).astype(bool)
    error = np.abs(restored[mask] - frame[mask]).mean()
    assert mask.sum() > 5000
    assert error < 4.0  # two bilinear resamplings of a natural image, in grey levels


def _parity(device: str) -> float:
    frame = make_demo_frame(7)
    landmarks_5 = np.array([[290.0, 160.0], [352.0, 168.0], [322.0, 205.0], [300.0, 238.0], [348.0, 242.0]])
    crop_from_frame = crop_from_frame_matrix(landmarks_5, 256)
    cpu = warp_crop(frame, crop_from_frame, 256).astype(np.float32)
    gpu = warp_crop_torch(torch.from_numpy(frame).to(device), [crop_from_frame], 256)
    gpu = gpu[0].permute(1, 2, 0).cpu().numpy()
    return float(np.abs(cpu - gpu)[4:-4, 4:-4].max())


def test_cpu_and_torch_warps_sample_the_same_points():
    assert _parity("cpu") <= 2.0  # OpenCV's fixed-point weights vs float weights


@pytest.mark.gpu
def test_cpu_and_gpu_warps_agree():
    assert _parity("cuda") <= 2.0
