"""What the quality benches measure, on images whose answer is known: a lattice raises the top
frequencies and shows as a peak in the mean spectrum; blur lowers the Laplacian's variance; the
face region is the landmarks' hull, shrunk."""

import cv2
import numpy as np

from realtime.eval.image_measures import face_region, lattice_share, mean_log_spectrum, power_spectrum, sharpness


def _smooth(seed: int, size: int = 128) -> np.ndarray:
    noise = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 3)


def _with_lattice(image: np.ndarray) -> np.ndarray:
    """A 2-px checkerboard added: the pattern a transposed convolution leaves."""
    y, x = np.indices(image.shape[:2])
    return np.clip(image.astype(np.int16) + np.where((x + y) % 2 == 0, 12, -12)[..., None], 0, 255).astype(np.uint8)


def test_a_lattice_raises_the_top_frequency_share():
    image = _smooth(0)
    assert lattice_share(image) < 0.5 and lattice_share(_with_lattice(image)) > 0.9  # the lattice owns the high band


def test_the_mean_spectrum_shows_a_lattice_at_the_nyquist_corner():
    crops = np.stack([_smooth(seed) for seed in range(4)])
    plain, latticed = mean_log_spectrum(crops), mean_log_spectrum(np.stack([_with_lattice(c) for c in crops]))
    assert plain.shape == latticed.shape == (128, 128)
    corner = (0, 0)  # (-0.5, -0.5) cycles/px after fftshift: a checkerboard's frequency
    assert latticed[corner] > plain[corner] + 2  # a hundredfold more power there
    assert abs(float(np.median(latticed)) - float(np.median(plain))) < 0.5  # elsewhere, much the same


def test_the_power_spectrum_of_a_flat_image_is_zero():
    assert np.allclose(power_spectrum(np.full((32, 32, 3), 90, np.uint8)), 0)


def test_sharpness_falls_with_blur_inside_the_mask():
    image = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[16:48, 16:48] = True
    assert sharpness(cv2.GaussianBlur(image, (0, 0), 2), mask) < 0.2 * sharpness(image, mask)


def test_the_face_region_is_the_hull_shrunk():
    square = np.array([[10, 10], [90, 10], [90, 90], [10, 90]], np.float32)
    region = face_region((100, 100, 3), square)
    assert region[50, 50] and not region[11, 11] and not region[5, 50]
    assert 0.6 * 80 * 80 < region.sum() < 80 * 80
