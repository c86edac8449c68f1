"""The blend stage: the CPU path with an identity generator, the CPU and torch stages agreeing, live controls."""

import logging
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from realtime.bundle import Detection, FrameBundle, HostSwapped
from realtime.config import BlendConfig, TrackConfig
from realtime.errors import ConfigError
from realtime.live import ControlsFileWatcher, LiveSettings
from realtime.stages.blend import BlendStage
from realtime.stages.track import FaceTracker
from realtime.testing import make_face_landmarks, make_ground_truth_frame
from realtime.vision.align import apply_affine, warp_crop
from realtime.vision.composite import paste_crop
from realtime.vision.composite_torch import paste_crop_torch
from realtime.vision.masks import face_mask


def _bundle(frame, t=0.0, tracker=None, landmarks=None):
    tracker = tracker or FaceTracker(TrackConfig(birth_hits=1, crop_size=256, fade_s=0.0))
    bundle = FrameBundle(0, 0, frame.copy(), t)  # the blend writes into the frame in place
    bundle.faces = tracker.step([Detection(landmarks if landmarks is not None else make_face_landmarks((330, 200), 70))], t, t)
    return bundle


def _identity_swap(bundle):
    """What a generator that returns its input crop would write."""
    for face in bundle.faces:
        face.swapped = HostSwapped(warp_crop(bundle.frame, face.crop_from_frame, face.crop_size))
    return bundle


@pytest.mark.parametrize("colour", ["off", "per_frame", "smoothed"])
def test_identity_generator_gives_back_the_input(colour):
    frame = make_ground_truth_frame(0, sensor_noise=0)
    bundle = _identity_swap(_bundle(frame))
    out = BlendStage(LiveSettings(BlendConfig(colour=colour))).process(bundle).frame
    assert out.shape == frame.shape
    diff = np.abs(out.astype(int) - frame.astype(int))
    assert diff.mean() < 0.3 and np.percentile(diff, 99.9) <= 30
    face = bundle.faces[0]
    x0, y0, x1, y1 = (int(v) for v in face.box)
    untouched = np.ones(frame.shape[:2], bool)
    untouched[max(0, y0 - 120) : y1 + 120, max(0, x0 - 120) : x1 + 120] = False
    assert np.array_equal(out[untouched], frame[untouched])  # pixels outside the face box


def test_faded_and_transparent_faces():
    frame = make_ground_truth_frame(0, sensor_noise=0)
    bundle = _identity_swap(_bundle(frame))
    for face in bundle.faces:
        face.swapped = HostSwapped(np.full_like(face.swapped.crop, 255))
    out = BlendStage(LiveSettings(BlendConfig(colour="off", opacity=0.0))).process(bundle).frame
    assert np.array_equal(out, frame)


def _paste_parity(device: str) -> float:
    frame = make_ground_truth_frame(3, sensor_noise=0)
    bundle = _bundle(frame)
    face = bundle.faces[0]
    crop = np.random.default_rng(1).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    mask = face_mask(apply_affine(face.crop_from_frame, face.landmarks), 256)
    cpu = paste_crop(frame, crop, mask, face.frame_from_crop, opacity=0.8)
    frame_t = torch.from_numpy(frame.copy()).to(device)
    paste_crop_torch(frame_t, torch.from_numpy(crop).to(device), torch.from_numpy(mask).to(device), face.frame_from_crop, opacity=0.8)
    return float(np.abs(frame_t.cpu().numpy().astype(int) - cpu.astype(int)).max())


def _stage_parity(device: str) -> None:
    frame = make_ground_truth_frame(0, sensor_noise=0)
    a = BlendStage(LiveSettings(BlendConfig(colour="per_frame")), device="cpu").process(_identity_swap(_bundle(frame))).frame
    torch_stage = BlendStage(LiveSettings(BlendConfig(colour="per_frame")), device=device)
    torch_stage.setup()
    b = torch_stage.process(_identity_swap(_bundle(frame))).frame
    diff = np.abs(a.astype(int) - b.astype(int))
    # colour statistics come from different LAB code (OpenCV vs torch): within a grey level or two
    assert diff.mean() < 0.5 and np.percentile(diff, 99.9) <= 6, (diff.mean(), np.percentile(diff, 99.9), diff.max())


def test_opencv_and_torch_blend_stages_agree():
    """The GPU code path, run by torch on the CPU: same colour match and composite as OpenCV's."""
    _stage_parity("torch-cpu")


@pytest.mark.gpu
def test_cpu_and_gpu_blend_agree():
    assert _paste_parity("cuda") <= 3
    _stage_parity("cuda")


def test_controls_changed_mid_run_take_effect_on_the_next_frame():
    controls = LiveSettings(BlendConfig(colour="off"))
    stage = BlendStage(controls)
    tracker = FaceTracker(TrackConfig(birth_hits=1, crop_size=256, fade_s=0.0))
    frame = make_ground_truth_frame(0, sensor_noise=0)

    def white_swap(t):
        bundle = _bundle(frame, t, tracker)
        for face in bundle.faces:
            face.swapped = HostSwapped(np.full((256, 256, 3), 255, np.uint8))
        return bundle

    assert not np.array_equal(stage.process(white_swap(0.0)).frame, frame)
    controls.update("blend", opacity=0.0)
    assert np.array_equal(stage.process(white_swap(1 / 30)).frame, frame)
    with pytest.raises(ConfigError):
        controls.update("blend", opacity=2.0)
    with pytest.raises(ConfigError, match="cannot change live"):
        controls.update("blend", blend_device="cuda")
    assert controls.blend.opacity == 0.0


def test_controls_file_is_reread_when_it_changes(tmp_path: Path, caplog):
    path = tmp_path / "live.toml"
    controls = LiveSettings(BlendConfig())
    watcher = ControlsFileWatcher(path, controls)
    assert watcher.poll() is False  # no file yet
    path.write_text("[blend]\nopacity = 0.5\nkeep_mouth = true\n")
    assert watcher.poll() is True and controls.blend.opacity == 0.5 and controls.blend.keep_mouth
    assert watcher.poll() is False  # unchanged
    time.sleep(0.01)
    path.write_text("[blend]\nopacity = 7\n")
    import os

    os.utime(path, (time.time() + 5, time.time() + 5))
    with caplog.at_level(logging.WARNING, logger="realtime"):
        assert watcher.poll() is False
    assert controls.blend.opacity == 0.5 and any("ignoring" in r.message for r in caplog.records)


@pytest.mark.parametrize("device", ["cpu", "torch-cpu"])
def test_smoothed_colour_flickers_less_than_per_frame(device):
    """A generator whose colour wobbles frame to frame: smoothed statistics steady the result
    (OpenCV path, and the torch path whose smoother state lives on the device)."""
    rng = np.random.default_rng(3)
    frame = make_ground_truth_frame(0, sensor_noise=0)
    results = {}
    for mode in ("off", "per_frame", "smoothed"):
        stage = BlendStage(LiveSettings(BlendConfig(colour=mode, colour_smoothing_s=0.5)), device=device)
        stage.setup()
        tracker = FaceTracker(TrackConfig(birth_hits=1, crop_size=256, fade_s=0.0))
        outputs = []
        for i in range(20):
            bundle = _identity_swap(_bundle(frame, i / 30, tracker))
            gain = rng.uniform(0.8, 1.2, 3)
            for face in bundle.faces:
                face.swapped = HostSwapped(np.clip(face.swapped.crop * gain, 0, 255).astype(np.uint8))
            outputs.append(stage.process(bundle).frame.astype(np.float32))
        face_box = (slice(150, 300), slice(260, 400))
        results[mode] = np.mean([np.abs(b[face_box] - a[face_box]).mean() for a, b in zip(outputs[5:], outputs[6:], strict=False)])
    assert results["per_frame"] < results["off"]
    assert results["smoothed"] < results["per_frame"]


def test_generator_mask_is_applied_the_same_on_both_paths():
    frame = make_ground_truth_frame(0, sensor_noise=0)
    outputs = []
    for device in ("cpu", "torch-cpu"):
        stage = BlendStage(LiveSettings(BlendConfig(colour="off")), device=device)
        stage.setup()
        bundle = _bundle(frame)
        for face in bundle.faces:
            mask = np.zeros((256, 256), np.float32)
            mask[:, :128] = 1.0  # the generator keeps only the left half of its crop
            face.swapped = HostSwapped(np.full((256, 256, 3), 255, np.uint8), mask)
        outputs.append(stage.process(bundle).frame.astype(int))
    cpu, ours = outputs
    changed = np.abs(cpu - frame).sum(axis=2) > 0
    xs = np.nonzero(changed)[1]
    assert changed.any() and xs.max() < 330 + 5  # only the left half of the face (centre x 330)
    diff = np.abs(cpu - ours)
    # white over the face: the two masks' edges (erosion vs polygon shrink) differ by about a pixel
    assert diff.mean() < 0.3 and np.percentile(diff, 99.9) <= 16, (diff.mean(), np.percentile(diff, 99.9))


def test_live_options_are_marked_once_and_checked_by_their_sections_own_rules():
    from realtime.config import SwapConfig
    from realtime.live import LiveSettings
    from realtime.options import live_fields

    assert live_fields(BlendConfig) == ("erode", "blur", "colour", "colour_smoothing_s", "keep_mouth", "keep_eyes", "opacity", "detail")
    assert live_fields(SwapConfig) == ("steady",)
    settings = LiveSettings(BlendConfig(), SwapConfig(steady=0.5))
    version = settings.choice.version
    assert settings.update("blend", opacity=0.5).choice.version == version  # the swap reads none of it
    assert settings.update("swap", steady=0.2).choice.version == version + 1  # the swap's caches start afresh
    with pytest.raises(ConfigError, match="--steady 0.95 is out of range"):
        settings.update("swap", steady=0.95)
    with pytest.raises(ConfigError, match="unknown swap mode"):
        settings.update("choice", mode="off")
    assert settings.swap.steady == 0.2 and settings.choice.mode == "swap"


def test_the_blend_reads_the_operators_choice_without_the_swap_package():
    import subprocess
    import sys

    code = "import sys, realtime.stages.blend; print(sorted(m for m in sys.modules if m.startswith('realtime.stages.swap')))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
