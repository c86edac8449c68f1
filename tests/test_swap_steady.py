"""The swap's steady average: the weight rule, the per-track memory on both paths, and the swap
stage averaging a still face's crops but never a moving face's, another track's or another identity's."""

import numpy as np
import pytest
import torch
from test_swap import _faces

from realtime.bundle import FrameBundle
from realtime.config import DetectConfig, SwapConfig, TrackConfig
from realtime.errors import ConfigError
from realtime.models.checkpoint import save_checkpoint
from realtime.models.target_autoencoder import TargetAutoencoder
from realtime.stages.swap import SwapStage
from realtime.stages.swap.steady import STILL_CROP_PX, SteadyCrops, face_motion, steady_weight
from realtime.testing import make_ground_truth_frame

POINTS = np.array([[10.0, 20.0], [30.0, 40.0], [50.0, 25.0]])
IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # crop_from_frame: frame pixels are crop pixels


def test_motion_is_measured_inside_the_crop():
    crop_from_frame = np.array([[2.0, 0.0, -5.0], [0.0, 2.0, 1.0]])
    followed = np.array([[2.0, 0.0, -25.0], [0.0, 2.0, -8.0]])  # the crop after the head moved (10, 4.5) frame px
    moved = POINTS + [10.0, 4.5]
    for matrix, expected in ((followed, 150), (crop_from_frame, 200)):  # the crop followed: still; it did not: moved
        steady = SteadyCrops(0.5)
        steady.start_frame(0, {1})
        steady.smooth(1, POINTS, crop_from_frame, _crop(100))
        steady.start_frame(0, {1})
        assert np.array_equal(steady.smooth(1, moved, matrix, _crop(200)), _crop(expected))


def test_face_motion_is_the_largest_landmark_move():
    moved = POINTS.copy()
    moved[1] += [3.0, 4.0]
    moved[2] += [1.0, 0.0]
    assert face_motion(POINTS, moved) == pytest.approx(5.0)
    assert face_motion(POINTS, POINTS) == 0.0
    assert face_motion(POINTS, POINTS[:2]) == float("inf")  # another landmark set: not comparable


def test_steady_weight_falls_linearly_to_zero_at_the_still_limit():
    assert steady_weight(0.0, 0.5) == 0.5
    assert steady_weight(STILL_CROP_PX / 2, 0.5) == pytest.approx(0.25)
    assert steady_weight(STILL_CROP_PX, 0.5) == 0.0 and steady_weight(10 * STILL_CROP_PX, 0.5) == 0.0
    assert steady_weight(0.0, 0.0) == 0.0 and steady_weight(float("inf"), 0.5) == 0.0


def _crop(value: int) -> torch.Tensor:
    return torch.full((4, 4, 3), value, dtype=torch.uint8)


def test_first_crop_is_shown_as_it_is_then_a_still_face_is_averaged():
    steady = SteadyCrops(0.5)
    steady.start_frame(0, {1})
    assert np.array_equal(steady.smooth(1, POINTS, IDENTITY, _crop(100)), _crop(100))
    steady.start_frame(0, {1})
    assert np.array_equal(steady.smooth(1, POINTS, IDENTITY, _crop(200)), _crop(150))
    assert steady.averaged == 1


def test_a_crop_not_averaged_is_passed_on_as_it_came_and_off_keeps_nothing():
    steady = SteadyCrops(0.5)
    first, moved = _crop(100), _crop(200)
    steady.start_frame(0, {1})
    assert steady.smooth(1, POINTS, IDENTITY, first) is first
    steady.start_frame(0, {1})
    assert steady.smooth(1, POINTS + STILL_CROP_PX, IDENTITY, moved) is moved
    off = SteadyCrops(0.0)
    for _ in range(2):
        off.start_frame(0, {1})
        assert off.smooth(1, POINTS, IDENTITY, first) is first
    assert off.averaged == 0 and not off._tracks


def test_a_moving_face_another_track_a_new_choice_or_a_gap_are_never_averaged():
    steady = SteadyCrops(0.5)
    steady.start_frame(0, {1, 2})
    steady.smooth(1, POINTS, IDENTITY, _crop(100))
    steady.smooth(2, POINTS, IDENTITY, _crop(10))
    steady.start_frame(0, {1, 2})
    assert np.array_equal(steady.smooth(1, POINTS + STILL_CROP_PX, IDENTITY, _crop(200)), _crop(200))  # moved
    assert np.array_equal(steady.smooth(2, POINTS, IDENTITY, _crop(30)), _crop(20))  # its own past only
    steady.start_frame(1, {1, 2})  # the operator chose another face
    assert np.array_equal(steady.smooth(1, POINTS + STILL_CROP_PX, IDENTITY, _crop(0)), _crop(0))
    steady.start_frame(1, {1})  # track 2 missed a frame
    steady.start_frame(1, {1, 2})
    assert np.array_equal(steady.smooth(2, POINTS, IDENTITY, _crop(90)), _crop(90))
    steady.reset()
    assert np.array_equal(steady.smooth(1, POINTS + STILL_CROP_PX, IDENTITY, _crop(60)), _crop(60))


def test_the_gpus_float16_average_matches_the_hosts_float32_one(monkeypatch):
    """One ``smooth`` on every device; a GPU averages in float16 (here on the CPU, so it runs
    anywhere), within one level of the host's float32."""
    from realtime.stages.swap import steady as steady_module

    rng = np.random.default_rng(0)
    crops = [torch.from_numpy(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)) for _ in range(4)]
    host, device = SteadyCrops(0.6), SteadyCrops(0.6)
    for index, crop in enumerate(crops):
        points = POINTS + 0.4 * index  # a little motion: a weight between 0 and the strength
        host.start_frame(0, {7})
        device.start_frame(0, {7})
        on_host = host.smooth(7, points, IDENTITY, crop)
        with monkeypatch.context() as patch:
            patch.setitem(steady_module._WORK_DTYPE, "cpu", torch.float16)  # as on a GPU
            on_device = device.smooth(7, points, IDENTITY, crop)
        assert on_device.dtype == torch.uint8 and on_device.shape == crop.shape
        assert (on_device.int() - on_host.int()).abs().max() <= 1  # float16 against float32
    assert host.averaged == device.averaged == 3


@pytest.mark.gpu
def test_a_track_that_changes_path_starts_afresh():
    steady = SteadyCrops(0.5)
    steady.start_frame(0, {1})
    steady.smooth(1, POINTS, IDENTITY, _crop(100).cuda())
    steady.start_frame(0, {1})
    assert torch.equal(steady.smooth(1, POINTS, IDENTITY, _crop(200)), _crop(200))  # the GPU's crop is not mixed into the host's
    steady.start_frame(0, {1})
    assert torch.equal(steady.smooth(1, POINTS, IDENTITY, _crop(50).cuda()).cpu(), _crop(50))
    steady.start_frame(0, {1})
    assert torch.equal(steady.smooth(1, POINTS, IDENTITY, _crop(100).cuda()).cpu(), _crop(75))  # its own path: averaged


def test_steady_is_range_checked():
    SwapConfig(steady=0.0)
    SwapConfig(steady=0.9)
    with pytest.raises(ConfigError, match="--steady"):
        SwapConfig(steady=0.95)
    with pytest.raises(ConfigError, match="--steady"):
        SwapConfig(steady=-0.1)


@pytest.fixture
def target_model(tmp_path):
    torch.manual_seed(0)
    hyperparameters = {"crop_size": 128, "identities": 2, "width": 4, "bottleneck": 16}
    path = tmp_path / "target.safetensors"
    save_checkpoint(
        path, TargetAutoencoder(**hyperparameters), architecture="target_autoencoder", hyperparameters=hyperparameters
    )
    return path


def _stage(target_model, steady: float) -> SwapStage:
    stage = SwapStage(
        SwapConfig(generator=str(target_model), backends=("cpu",), steady=steady),
        TrackConfig(crop_size=128),
        DetectConfig(),
    )
    stage.setup()
    return stage


def _swapped(stage: SwapStage, frame: np.ndarray, faces) -> np.ndarray:
    bundle = FrameBundle(0, 0, frame.copy(), 0.0)
    bundle.faces = faces
    return stage.process(bundle).faces[0].swapped.crop.copy()


def test_the_swap_stage_averages_a_still_face_and_not_a_moved_one(target_model):
    steadied, plain = _stage(target_model, 0.5), _stage(target_model, 0.0)
    first, second = (
        make_ground_truth_frame(0),
        make_ground_truth_frame(0, sensor_noise=12),
    )  # the camera's noise changes the crop
    faces = _faces(first)
    assert np.array_equal(_swapped(steadied, first, faces), _swapped(plain, first, faces))
    raw_first, raw_second = _swapped(plain, first, faces), _swapped(plain, second, faces)
    assert not np.array_equal(raw_first, raw_second)
    averaged = _swapped(steadied, second, faces)
    expected = (raw_first.astype(np.float32) + raw_second) / 2
    assert np.abs(averaged - expected).max() <= 1.0
    assert steadied.describe()["steady"] == {"weight": 0.5, "crops_averaged": 1}
    moved = _faces(first)
    for face in moved:  # a different expression: landmarks far from last frame's inside the crop
        face.landmarks = face.landmarks + np.random.default_rng(3).normal(0, 10, face.landmarks.shape)
    assert np.array_equal(_swapped(steadied, first, moved), _swapped(plain, first, moved))


def test_steady_set_live_replaces_the_runs_and_is_range_checked(target_model):
    from realtime.errors import ConfigError
    from realtime.live import LiveSettings

    turned_off, turned_on, plain = _stage(target_model, 0.5), _stage(target_model, 0.0), _stage(target_model, 0.0)
    turned_off.settings.update("swap", steady=0.0)
    turned_on.settings.update("swap", steady=0.5)
    first, second = make_ground_truth_frame(0), make_ground_truth_frame(0, sensor_noise=12)
    faces = _faces(first)
    for stage in (turned_off, turned_on, plain):
        _swapped(stage, first, faces)
    raw_first = _swapped(plain, first, faces)
    raw_second = _swapped(plain, second, faces)
    assert np.array_equal(_swapped(turned_off, second, faces), raw_second)
    assert np.abs(_swapped(turned_on, second, faces) - (raw_first.astype(np.float32) + raw_second) / 2).max() <= 1.0
    assert turned_off.describe()["steady"]["weight"] == 0.0 and turned_on.describe()["steady"]["weight"] == 0.5
    with pytest.raises(ConfigError, match="out of range"):  # SwapConfig's own check, as for --steady
        LiveSettings().update("swap", steady=0.95)
