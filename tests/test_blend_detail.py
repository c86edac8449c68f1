"""The blend's detail restore: the frame's texture finer than the generator's crop, added back over the swap."""

import numpy as np
import pytest
import torch

from realtime.bundle import HostSwapped
from realtime.config import BlendConfig
from realtime.errors import ConfigError
from realtime.live import LiveSettings
from realtime.stages.blend import BlendStage
from realtime.testing import make_face_landmarks, make_ground_truth_frame
from realtime.vision.composite import (
    BAND_STEPS_PER_GREY,
    DETAIL_SIGMA_CROP_PX,
    MAX_DETAIL_SIGMA_PX,
    detail_band,
    detail_sigma,
)
from realtime.vision.composite_torch import detail_band_torch
from tests.test_blend import _bundle, _identity_swap

SCALE_2 = np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])  # region_from_crop: a face spanning twice the crop's pixels


def _textured(size: int, seed: int = 0) -> np.ndarray:
    """A smooth gradient plus a 1-px noise texture (what skin pores look like at 1080p)."""
    y, x = np.mgrid[0:size, 0:size]
    smooth = 60 + 120 * (x + y) / (2 * size)
    texture = np.random.default_rng(seed).normal(0, 12, (size, size))
    return np.clip(np.stack([smooth + texture] * 3, axis=-1), 0, 255).astype(np.uint8)


def _interior(a: np.ndarray) -> np.ndarray:
    return a[8:-8, 8:-8]


def test_the_band_holds_the_texture_finer_than_the_crop_and_not_the_smooth_shading():
    y, x = np.mgrid[0:256, 0:256]
    smooth = np.stack([60 + 120 * (x + y) / 512] * 3, axis=-1).astype(np.uint8)
    sigma = detail_sigma(SCALE_2)
    # shading survives the crop: what is left is the gradient's own uint8 staircase (3/8 of a grey
    # level), and no rounding of the band's own (a band in whole grey levels left a full one)
    assert np.abs(_interior(detail_band(smooth, sigma))).max() < BAND_STEPS_PER_GREY / 2
    textured = _textured(256)
    band = _interior(detail_band(textured, sigma)) / BAND_STEPS_PER_GREY
    texture = _interior(textured.astype(np.float32) - smooth)
    assert band.std() > 0.6 * texture.std()  # most of the 1-px texture is finer than a crop of half the pixels
    assert abs(float(band.mean())) < 0.5  # zero mean: it cannot shift the face's colour


def test_the_band_follows_the_faces_size_in_crop_pixels():
    assert detail_sigma(SCALE_2) == pytest.approx(2 * DETAIL_SIGMA_CROP_PX)
    rotated = np.array([[0.0, -2.0, 5.0], [2.0, 0.0, 7.0]])  # turning or moving the crop changes nothing
    assert detail_sigma(rotated) == pytest.approx(detail_sigma(SCALE_2))
    assert detail_sigma(SCALE_2 * 100) == MAX_DETAIL_SIGMA_PX  # the GPU's fixed kernel width
    smaller = np.array([[0.4, 0.0, 0.0], [0.0, 0.4, 0.0]])  # the crop has more pixels than the face
    assert not detail_band(_textured(64), detail_sigma(smaller)).any()


def test_the_torch_band_is_the_opencv_band():
    textured = _textured(192, seed=3)
    region = torch.from_numpy(textured).permute(2, 0, 1).float()
    for matrix in (SCALE_2, SCALE_2 * 0.8, np.array([[0.4, 0.0, 0.0], [0.0, 0.4, 0.0]])):
        ours = detail_band_torch(region, torch.tensor(matrix, dtype=torch.float32)).permute(1, 2, 0).numpy()
        theirs = detail_band(textured, detail_sigma(matrix)) / BAND_STEPS_PER_GREY
        # the CPU's band is fixed point and its Gaussian ends at 3 sigma, the GPU's at a fixed 8 px
        assert np.abs(ours - theirs).max() < 0.15, matrix
        assert np.abs(ours - theirs).mean() < 0.03, matrix


BIG_FACE = make_face_landmarks((320, 240), 140)  # a crop pixel spans 1.5 frame pixels, as at 1080p


def _fine_frame() -> np.ndarray:
    frame = make_ground_truth_frame(0, sensor_noise=0).astype(np.int16)
    texture = np.random.default_rng(5).integers(-14, 15, frame.shape[:2])[..., None]
    return np.clip(frame + texture, 0, 255).astype(np.uint8)


def _blurred_swap(bundle):
    """A generator that gives its input crop back, softened: what a soft generator looks like."""
    import cv2

    bundle = _identity_swap(bundle)
    for face in bundle.faces:
        face.swapped = HostSwapped(cv2.GaussianBlur(face.swapped.crop, (0, 0), 1.5))
    return bundle


@pytest.mark.parametrize("device", ["cpu", "torch-cpu"])
def test_detail_brings_a_soft_swap_back_towards_the_camera_sharpness(device):
    frame = _fine_frame()
    outputs = {}
    for detail in (0.0, 1.0):
        stage = BlendStage(LiveSettings(BlendConfig(colour="off", detail=detail)), device=device)
        stage.setup()
        bundle = _blurred_swap(_bundle(frame, landmarks=BIG_FACE))
        outputs[detail] = stage.process(bundle).frame
    x0, y0, x1, y1 = (int(v) for v in bundle.faces[0].box)
    inner = (slice(y0 + (y1 - y0) // 4, y1 - (y1 - y0) // 4), slice(x0 + (x1 - x0) // 4, x1 - (x1 - x0) // 4))
    error = {d: np.abs(out[inner].astype(int) - frame[inner].astype(int)).mean() for d, out in outputs.items()}
    assert error[1.0] < 0.6 * error[0.0], error
    untouched = np.ones(frame.shape[:2], bool)
    untouched[max(0, y0 - 120) : y1 + 120, max(0, x0 - 120) : x1 + 120] = False
    assert np.array_equal(outputs[1.0][untouched], frame[untouched])  # nothing outside the face changes


def test_the_torch_and_opencv_stages_restore_the_same_detail():
    frame = _fine_frame()
    outs = []
    for device in ("cpu", "torch-cpu"):
        stage = BlendStage(LiveSettings(BlendConfig(colour="per_frame", detail=0.7)), device=device)
        stage.setup()
        outs.append(stage.process(_blurred_swap(_bundle(frame, landmarks=BIG_FACE))).frame)
    diff = np.abs(outs[0].astype(int) - outs[1].astype(int))
    assert diff.mean() < 0.5 and np.percentile(diff, 99.9) <= 6, (diff.mean(), np.percentile(diff, 99.9))


def test_detail_out_of_range_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match="--detail 1.5 is out of range"):
        BlendConfig(detail=1.5)


def test_detail_changes_live():
    controls = LiveSettings(BlendConfig())
    assert controls.blend.detail != 0.25
    assert controls.update("blend", detail=0.25).blend.detail == 0.25 == controls.blend.detail


def test_turning_detail_off_and_on_live_builds_no_new_gpu_shape():
    """The strength is a parameter of the region graph, not part of its shape: a panel slider
    moved during a stream must not cost a graph build (a slow frame)."""
    frame = _fine_frame()
    controls = LiveSettings(BlendConfig(colour="off", detail=0.6))
    stage = BlendStage(controls, device="torch-cpu")
    stage.setup()
    outputs = []
    for detail in (0.6, 0.0, 0.6):
        controls.update("blend", detail=detail)
        outputs.append(stage.process(_blurred_swap(_bundle(frame, landmarks=BIG_FACE))).frame)
    assert stage.describe()["shapes_built_live"] == 1
    assert not np.array_equal(outputs[0], outputs[1]) and np.array_equal(outputs[0], outputs[2])
