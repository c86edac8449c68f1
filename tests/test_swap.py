"""Swap and blend: batching, paste-back geometry, the swap stage with real (tiny) checkpoints,
and `realtime swap-image` end to end."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from realtime.bundle import Detection, FrameBundle
from realtime.cli import main
from realtime.config import DetectConfig, SwapConfig, TrackConfig
from realtime.errors import ConfigError
from realtime.inference.spec import from_generator, to_generator
from realtime.models.aei_net import AEINet
from realtime.models.checkpoint import save_checkpoint
from realtime.models.identity import IdentityEncoder
from realtime.models.target_autoencoder import TargetAutoencoder
from realtime.stages.blend import BlendStage
from realtime.stages.swap import SwapStage, batch_bucket
from realtime.testing import make_ground_truth_frame
from realtime.vision.align import crop_from_frame_matrix, invert_affine, warp_crop
from realtime.vision.composite import paste_crop

AEI = {"crop_size": 128, "id_dim": 16, "attr_width": 4, "gen_width": 4, "max_mult": 2}
ENCODER = {"embed_dim": 16, "width": 0.25}


def test_batch_buckets():
    assert [batch_bucket(n) for n in (1, 2, 3, 4, 5, 8, 9)] == [1, 2, 4, 4, 8, 8, 16]


def test_tensor_image_round_trip():
    images = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    assert np.array_equal(from_generator(to_generator(images)).numpy(), images)


def test_pasting_the_crop_it_came_from_changes_nothing_and_touches_only_the_box():
    frame = make_ground_truth_frame(0)
    five = np.array([[300.0, 170.0], [360.0, 172.0], [330.0, 210.0], [305.0, 240.0], [355.0, 241.0]])
    crop_from_frame = crop_from_frame_matrix(five, 128)
    crop = warp_crop(frame, crop_from_frame, 128)
    mask = np.zeros((128, 128), np.float32)
    mask[20:108, 20:108] = 1.0
    out = paste_crop(frame, crop, mask, invert_affine(crop_from_frame))
    diff = np.abs(out.astype(int) - frame.astype(int))
    assert diff.mean() < 0.5 and np.percentile(diff, 99.9) <= 40  # two bilinear resamplings
    # far from the face nothing moves at all
    assert np.array_equal(out[:100], frame[:100]) and np.array_equal(out[:, :200], frame[:, :200])


def test_paste_is_clipped_at_the_frame_edge():
    frame = np.zeros((50, 50, 3), np.uint8)
    crop = np.full((32, 32, 3), 255, np.uint8)
    frame_from_crop = np.array([[1.0, 0, 40.0], [0, 1.0, -10.0]])  # hangs off the right and top
    out = paste_crop(frame, crop, np.ones((32, 32), np.float32), frame_from_crop)
    assert out[0:20, 42:].min() == 255 and out[30:, :].max() == 0


@pytest.fixture
def checkpoints(tmp_path: Path) -> dict[str, Path]:
    torch.manual_seed(0)
    paths = {"aei": tmp_path / "aei.safetensors", "enc": tmp_path / "enc.safetensors", "target": tmp_path / "target.safetensors"}
    save_checkpoint(paths["aei"], AEINet(**AEI), architecture="aei_net", hyperparameters=AEI)
    save_checkpoint(paths["enc"], IdentityEncoder(**ENCODER), architecture="identity_encoder", hyperparameters=ENCODER)
    target = {"crop_size": 128, "identities": 2, "width": 4, "bottleneck": 16}
    save_checkpoint(paths["target"], TargetAutoencoder(**target), architecture="target_autoencoder", hyperparameters=target)
    source = tmp_path / "source.png"
    cv2.imwrite(str(source), cv2.cvtColor(make_ground_truth_frame(0, sensor_noise=0), cv2.COLOR_RGB2BGR))
    paths["source"] = source
    return paths


def _faces(frame):
    from realtime.stages.track import FaceTracker

    five = np.array([[300.0, 170.0], [360.0, 172.0], [330.0, 210.0], [305.0, 240.0], [355.0, 241.0]])
    landmarks = np.tile(five.mean(axis=0), (478, 1)) + np.random.default_rng(1).normal(0, 30, (478, 2))
    landmarks[[33, 133]] = [[290, 170], [310, 170]]
    landmarks[[362, 263]] = [[350, 172], [370, 172]]
    landmarks[1], landmarks[61], landmarks[291] = five[2], five[3], five[4]
    return FaceTracker(TrackConfig(birth_hits=1, crop_size=128, fade_s=0.0)).step([Detection(landmarks)], 0.0, 0.0)


def test_per_target_swap_writes_crops_and_masks(checkpoints):
    stage = SwapStage(SwapConfig(generator=str(checkpoints["target"]), target_identity=1, backends=("cpu",)), TrackConfig(crop_size=128), DetectConfig(max_faces=2))
    stage.setup()
    frame = make_ground_truth_frame(0)
    bundle = FrameBundle(0, 0, frame.copy(), 0.0)
    bundle.faces = _faces(frame)
    stage.process(bundle)
    face = bundle.faces[0]
    assert face.swapped is not None and not face.swapped.on_device and face.swapped.mask is not None
    assert face.swapped.crop.shape == (128, 128, 3) and face.swapped.crop.dtype == np.uint8
    assert face.swapped.mask.shape == (128, 128) and 0 <= face.swapped.mask.min() <= face.swapped.mask.max() <= 1
    assert stage.describe()["backend"]["backend"] == "cpu" and stage.describe()["batches"] == [1, 2]
    blended = BlendStage().process(bundle).frame
    assert not np.array_equal(blended, frame)
    assert np.array_equal(blended[:100], frame[:100])  # outside the face box


def test_crop_size_mismatch_is_refused(checkpoints):
    stage = SwapStage(SwapConfig(generator=str(checkpoints["aei"]), backends=("cpu",)), TrackConfig(crop_size=256), DetectConfig())
    with pytest.raises(ConfigError, match="--crop-size 128"):
        stage.setup()


def test_aei_net_needs_a_source(checkpoints):
    stage = SwapStage(SwapConfig(generator=str(checkpoints["aei"]), backends=("cpu",)), TrackConfig(crop_size=128), DetectConfig())
    with pytest.raises(ConfigError, match="--source IMAGE and --identity-encoder"):
        stage.setup()


def test_swap_image_end_to_end(checkpoints, tmp_path, capsys):
    from conftest import has_face_model

    if not has_face_model():
        pytest.skip("no face_landmarker.task available offline")
    target = tmp_path / "target.png"
    cv2.imwrite(str(target), cv2.cvtColor(make_ground_truth_frame(60, sensor_noise=0), cv2.COLOR_RGB2BGR))
    out = tmp_path / "out.png"
    args = ["swap-image", "--source", str(checkpoints["source"]), "--target", str(target), "--output", str(out),
            "--generator", str(checkpoints["aei"]), "--identity-encoder", str(checkpoints["enc"]), "--crop-size", "128", "--backends", "cpu"]
    assert main(args) == 0
    result = cv2.imread(str(out))
    original = cv2.imread(str(target))
    assert result.shape == original.shape
    changed = np.abs(result.astype(int) - original.astype(int)).sum(axis=2) > 0
    ys, xs = np.nonzero(changed)
    assert changed.mean() < 0.2 and 200 < xs.mean() < 500  # only around the face
    # bad inputs: no face in the source, missing generator
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 90, np.uint8))
    assert main([*args[:2], str(blank), *args[3:]]) != 0
    assert "no face found in the source image" in capsys.readouterr().err
    assert main([*args[:7], "--generator", str(tmp_path / "missing.safetensors"), *args[9:]]) != 0
    assert "does not exist" in capsys.readouterr().err


def test_run_with_a_generator_end_to_end(checkpoints, tmp_path):
    """The main command with every stage: demo clip → detect → track → swap → blend → file."""
    import json

    from conftest import has_face_model

    if not has_face_model():
        pytest.skip("no face_landmarker.task available offline")
    out, report = tmp_path / "swapped.mp4", tmp_path / "report.json"
    code = main([
        "run", "--input", "demo", "--demo-frames", "20", "--output", str(out), "--report", str(report), "--quiet",
        "--generator", str(checkpoints["aei"]), "--identity-encoder", str(checkpoints["enc"]), "--source", str(checkpoints["source"]),
        "--crop-size", "128", "--backends", "cpu", "--blend-device", "cpu",
    ])
    assert code == 0 and out.exists()
    data = json.loads(report.read_text())
    assert [s for s in data["stages"]] == ["capture", "detect", "track", "swap", "blend"]
    assert data["stages_info"]["swap"]["backend"]["backend"] == "cpu"
    assert data["stages_info"]["swap"]["faces_swapped"] >= 18
    assert data["frames"]["failed_frames"] == 0


def test_crop_size_follows_the_generator_unless_given(checkpoints):
    """Resolved where the run is wired (app, the still swapper), not when a Config is built: building one reads no file."""
    from realtime.config import Config, build_config
    from realtime.generators import resolve_crop_size

    assert Config().track.crop_px == 256 and Config().track.crop_size is None
    unresolved = build_config(overrides={"generator": str(checkpoints["aei"])})
    assert unresolved.track.crop_size is None
    assert resolve_crop_size(unresolved).track.crop_size == 128
    assert resolve_crop_size(build_config(overrides={"generator": str(checkpoints["aei"]), "crop_size": 256})).track.crop_size == 256
    assert build_config(overrides={"generator": str(checkpoints["aei"]) + ".missing"}).swap.generator  # no I/O: not an error yet


def test_use_identity_changes_the_face_worn_and_checks_its_shape(checkpoints):
    from conftest import has_face_model

    from realtime.errors import ModelError

    if not has_face_model():
        pytest.skip("no face_landmarker.task available offline")
    stage = SwapStage(SwapConfig(generator=str(checkpoints["aei"]), identity_encoder=str(checkpoints["enc"]), source="demo", backends=("cpu",)), TrackConfig(crop_size=128), DetectConfig())
    stage.setup()  # 'demo' is the built-in portrait
    frame = make_ground_truth_frame(0)
    first = FrameBundle(0, 0, frame.copy(), 0.0)
    first.faces = _faces(frame)
    before = stage.process(first).faces[0].swapped.crop.copy()
    stage.use_identity(torch.nn.functional.normalize(torch.randn(16), dim=0))
    second = FrameBundle(1, 0, frame.copy(), 0.0)
    second.faces = _faces(frame)
    assert not np.array_equal(stage.process(second).faces[0].swapped.crop, before)
    with pytest.raises(ModelError, match="identity encoder"):
        stage.use_identity(torch.zeros(8))
