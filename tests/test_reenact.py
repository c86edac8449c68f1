"""The reenactment warp: a thin-plate spline through both faces' landmarks carries the source
photo's pixels onto the target's pose (CPU original and torch twin)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from realtime.testing import make_face_landmarks
from realtime.vision import reenact as cpu
from realtime.vision import reenact_torch as twin

CROP = 128


def landmarks(seed: int = 0, centre: tuple[float, float] = (64.0, 60.0), iod: float = 30.0) -> np.ndarray:
    """The test face layout with every point a little apart (a spline cannot pin two values on one point)."""
    rng = np.random.default_rng(seed)
    return make_face_landmarks(centre, iod) + rng.normal(0, 1.5, (478, 2))


def textured(size: int, seed: int = 1) -> np.ndarray:
    """A smooth colour texture: every pixel tells where it came from, and bilinear reads are exact enough."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    image = np.stack([xs * 255 / size, ys * 255 / size, 128 + 60 * np.sin(xs / 9 + ys / 13)], axis=-1)
    return np.clip(image, 0, 255).astype(np.uint8)


def test_an_affine_motion_of_the_landmarks_is_reproduced_exactly() -> None:
    target = landmarks()
    matrix = np.array([[1.1, 0.15, 7.0], [-0.12, 0.95, -4.0]])
    source = target @ matrix[:, :2].T + matrix[:, 2]
    mapped = cpu.coarse_map(source, target, CROP).reshape(-1, 2)
    expected = cpu.grid_points(CROP) @ matrix[:, :2].T + matrix[:, 2]
    assert np.abs(mapped - expected).max() < 1e-6


def test_the_spline_passes_through_its_control_points() -> None:
    rng = np.random.default_rng(3)
    control = rng.uniform(0, 1, (40, 2))
    values = control + rng.normal(0, 0.03, (40, 2))  # a bend, not an affine map
    weights, affine = cpu.fit_spline(control, values, smoothing=1e-9)
    assert np.abs(cpu.eval_spline(control, control, weights, affine) - values).max() < 1e-6
    # the default smoothing follows the points closely on the whole but not exactly: a landmark's
    # jitter (or two close points pulled apart) does not fold the map
    residual = np.abs(cpu.eval_spline(control, control, *cpu.fit_spline(control, values)) - values)
    assert 1e-5 < residual.mean() < 0.01


def test_a_face_reenacted_onto_its_own_landmarks_comes_back_unchanged() -> None:
    image = textured(CROP)
    points = landmarks()
    warped, mask = cpu.reenact(image, points, points, CROP)
    inside = mask > 0
    assert inside.mean() > 0.2  # the face outline, all of it inside the photo
    assert np.abs(warped.astype(int) - image.astype(int))[inside].max() <= 1


def test_the_source_follows_the_target_when_the_target_moves() -> None:
    image = textured(CROP)
    points = landmarks()
    moved = points + (6.0, -3.0)  # the target's face sits 6 px right, 3 px up in its crop
    warped, mask = cpu.reenact(image, points, moved, CROP)
    ys, xs = np.nonzero(mask > 0)
    inside = (ys >= 3) & (xs < CROP - 6)
    ys, xs = ys[inside], xs[inside]
    # what the output shows at (x, y) is the source's pixel at (x − 6, y + 3)
    assert np.abs(warped[ys, xs].astype(int) - image[ys + 3, xs - 6].astype(int)).max() <= 1


def test_reading_outside_the_photo_is_masked_out() -> None:
    image = textured(CROP)
    points = landmarks()
    _, mask = cpu.reenact(image[:, :70], points, points, CROP)  # a photo cut off at x = 70
    ys, xs = np.nonzero(mask > 0)
    assert xs.max() <= 69 and len(xs) > 0


@pytest.mark.parametrize("seed", [0, 5])
def test_the_torch_twin_maps_and_samples_as_the_cpu_original(seed: int) -> None:
    image = textured(160, seed)
    source_points = landmarks(seed, centre=(80.0, 75.0), iod=36.0)
    target_points = landmarks(seed + 1) @ np.array([[0.97, 0.08], [-0.06, 1.02]]).T + (2.0, 1.0)
    coarse = cpu.coarse_map(source_points, target_points, CROP)
    expected_map = cpu.corner_aligned_resize(coarse, CROP)
    got_map = twin.source_map(torch.from_numpy(source_points)[None], torch.from_numpy(target_points)[None], CROP)[0].numpy()
    assert np.abs(got_map - expected_map).max() < 1e-3
    warped_cpu, mask_cpu = cpu.reenact(image, source_points, target_points, CROP)
    batch = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    warped, inside = twin.reenact(batch, torch.from_numpy(source_points)[None], torch.from_numpy(target_points)[None], CROP)
    warped_np = warped[0].permute(1, 2, 0).numpy()
    compare = mask_cpu > 0
    assert np.abs(warped_np - warped_cpu.astype(np.float32))[compare].mean() < 0.6
    assert np.all(inside[0, 0].numpy()[compare] == 1)


def test_the_twin_warps_each_face_of_a_batch_by_its_own_landmarks() -> None:
    image = torch.from_numpy(textured(CROP)).permute(2, 0, 1).float()
    points = torch.from_numpy(landmarks())
    batch_sources = torch.stack([image, image])
    sources = torch.stack([points, points])
    targets = torch.stack([points, points + torch.tensor([6.0, 0.0], dtype=points.dtype)])
    warped, _ = twin.reenact(batch_sources, sources, targets, CROP)
    alone, _ = twin.reenact(batch_sources[1:], sources[1:], targets[1:], CROP)
    assert torch.allclose(warped[1], alone[0], atol=1e-3)
    assert (warped[0] - warped[1]).abs().mean() > 1.0
