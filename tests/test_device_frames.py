"""Frames kept on the device from capture to blend: upload/download, crops cut from the device copy,
the blend into it, and parity with the host path (on the CPU through torch; on CUDA, marked gpu)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from realtime.bundle import Detection, FrameBundle, HostSwapped, Swapped
from realtime.config import BlendConfig, DetectConfig, SwapConfig, TrackConfig
from realtime.gpu.frames import DeviceFrame, DeviceFrames, download
from realtime.live import LiveSettings
from realtime.models.checkpoint import save_checkpoint
from realtime.models.target_autoencoder import TargetAutoencoder
from realtime.stages.blend import BlendStage
from realtime.stages.blend.gpu import GpuBlender
from realtime.stages.swap import SwapStage
from realtime.stages.track import FaceTracker
from realtime.testing import make_face_landmarks, make_ground_truth_frame
from realtime.vision.align import crop_from_frame_matrix, warp_crop
from realtime.vision.align_torch import warp_crop_torch

TARGET = {"crop_size": 128, "identities": 2, "width": 4, "bottleneck": 16}


def _faces(t: float = 0.0, tracker: FaceTracker | None = None, centre=(330, 200)):
    tracker = tracker or FaceTracker(TrackConfig(birth_hits=1, crop_size=128, fade_s=0.0))
    return tracker.step([Detection(make_face_landmarks(centre, 70))], t, t)


def test_upload_and_download_on_a_cpu_device_use_the_host_frame_and_can_be_switched_off(caplog):
    caplog.set_level("INFO", logger="realtime")
    frames = DeviceFrames("cpu")
    frame = make_ground_truth_frame(0)
    uploaded = frames.upload(frame)
    assert uploaded is not None and uploaded.tensor.data_ptr() == frame.__array_interface__["data"][0]
    host, event = download(uploaded, None)
    assert event is None and np.shares_memory(host, frame)
    frames.disable("the generator runs on the CPU")
    frames.disable("again")  # one log line, whatever the number of calls
    assert frames.upload(frame) is None and not frames.enabled
    assert frames.describe() == {"device": "cpu", "enabled": False, "frames_uploaded": 1}
    assert sum("frames stay on the host" in r.message for r in caplog.records) == 1


def test_crops_cut_from_the_device_frame_match_the_host_crops():
    frame = make_ground_truth_frame(0, sensor_noise=0)
    five = np.array([[300.0, 170.0], [360.0, 172.0], [330.0, 210.0], [305.0, 240.0], [355.0, 241.0]])
    inside = crop_from_frame_matrix(five, 128)
    hanging_off = crop_from_frame_matrix(five - [290, 150], 128)  # the face runs off the top-left corner
    crops = warp_crop_torch(torch.from_numpy(frame), [inside, hanging_off], 128, 4)
    assert crops.shape == (4, 3, 128, 128) and crops[2:].abs().max() == 0  # padding rows stay zero
    for index, matrix in enumerate((inside, hanging_off)):
        expected = warp_crop(frame, matrix, 128).astype(np.float32)
        got = crops[index].permute(1, 2, 0).numpy()
        assert np.abs(got - expected).max() <= 1.0  # OpenCV rounds to 8 bits, the torch crop does not


def test_a_frame_entirely_outside_gives_a_blank_crop():
    frame = np.zeros((40, 40, 3), np.uint8)
    far_away = np.array([[1.0, 0, 500.0], [0, 1.0, 500.0]])
    assert warp_crop_torch(torch.from_numpy(frame), [far_away], 16).abs().max() == 0


@pytest.fixture
def target_checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "target.safetensors"
    save_checkpoint(path, TargetAutoencoder(**TARGET), architecture="target_autoencoder", hyperparameters=TARGET)
    return path


def _swap_stage(checkpoint: Path, frames, backend: str = "cpu") -> SwapStage:
    stage = SwapStage(SwapConfig(generator=str(checkpoint), target_identity=1, backends=(backend,)), TrackConfig(crop_size=128), DetectConfig(max_faces=2), frames=frames)
    stage.setup()
    return stage


def test_the_swap_stage_leaves_its_results_on_the_device_and_they_match_the_host_path(target_checkpoint):
    frames = DeviceFrames("cpu")
    stage = _swap_stage(target_checkpoint, frames)
    frame = make_ground_truth_frame(0)
    on_device = FrameBundle(0, 0, frame.copy(), 0.0, faces=_faces())
    on_device.device_frame = frames.upload(on_device.frame)
    stage.process(on_device)
    on_host = FrameBundle(0, 0, frame.copy(), 0.0, faces=_faces())
    stage.process(on_host)
    device_face, host_face = on_device.faces[0], on_host.faces[0]
    on_device, on_host = device_face.swapped, host_face.swapped
    assert on_device is not None and on_device.on_device and on_device.crop.dtype == torch.uint8 and on_host is not None and not on_host.on_device
    assert on_device.crop.shape == (128, 128, 3) and on_device.mask is not None and on_device.mask.shape == (128, 128)
    assert np.abs(on_device.host().crop.astype(int) - on_host.crop.astype(int)).max() <= 2
    assert np.abs(on_device.host().mask - on_host.mask).max() < 0.02
    assert stage.describe()["faces_swapped_on_device"] == 1


class _FramesOnAnotherDevice:
    device = torch.device("cuda")

    def __init__(self) -> None:
        self.why: str | None = None
        self.enabled = True

    def disable(self, why: str) -> None:
        self.why, self.enabled = why, False


def test_a_generator_that_is_not_on_the_frames_device_switches_the_uploads_off(target_checkpoint):
    frames = _FramesOnAnotherDevice()
    _swap_stage(target_checkpoint, frames)
    assert frames.why is not None and "runs on cpu" in frames.why


def _with_device_crops(faces, frame: np.ndarray):
    for face in faces:
        face.swapped = Swapped(torch.from_numpy(warp_crop(frame, face.crop_from_frame, face.crop_size)))
    return faces


def test_blending_into_the_device_frame_gives_the_host_path_pixels_frame_after_frame():
    """Same faces, three frames, smoothed colour (state carried per track): the device-frame blend
    and the per-box blend agree exactly, and pixels outside the face box never change."""
    settings = BlendConfig(colour="smoothed")
    host_blender, device_blender = GpuBlender("torch-cpu"), GpuBlender("torch-cpu")
    host_tracker = FaceTracker(TrackConfig(birth_hits=1, crop_size=128, fade_s=0.0))
    device_tracker = FaceTracker(TrackConfig(birth_hits=1, crop_size=128, fade_s=0.0))
    for step in range(3):
        t = step / 30
        frame = make_ground_truth_frame(step, sensor_noise=0)
        host_faces = _faces(t, host_tracker)
        for face in host_faces:
            face.swapped = HostSwapped(warp_crop(frame, face.crop_from_frame, 128))
        expected = host_blender.composite(frame.copy(), host_faces, t, settings)
        device_frame = DeviceFrame(torch.from_numpy(frame.copy()))
        got, event = device_blender.composite_device(device_frame, _with_device_crops(_faces(t, device_tracker), frame), t, settings)
        assert event is None and np.array_equal(got, expected)
        assert np.array_equal(got[:60], frame[:60])


def test_the_blend_stage_uses_the_device_frame_when_the_crops_are_there_and_the_sink_waits():
    frame = make_ground_truth_frame(0, sensor_noise=0)
    stage = BlendStage(LiveSettings(BlendConfig(colour="per_frame")), device="torch-cpu", crop_size=128)
    stage.setup()
    bundle = FrameBundle(0, 0, frame.copy(), 0.0, faces=_with_device_crops(_faces(), frame))
    bundle.device_frame = DeviceFrame(torch.from_numpy(bundle.frame.copy()))
    original = bundle.frame
    out = stage.process(bundle)
    assert out.frame is not original and not np.array_equal(out.frame, frame)
    assert np.array_equal(original, frame)  # the host copy was not touched: only the device copy was
    # without a device frame the same crops are brought to the host and blended there, the same way
    host_bundle = FrameBundle(0, 0, frame.copy(), 0.0, faces=_with_device_crops(_faces(), frame))
    other = BlendStage(LiveSettings(BlendConfig(colour="per_frame")), device="torch-cpu", crop_size=128)
    other.setup()
    assert np.array_equal(other.process(host_bundle).frame, out.frame)
    stage.teardown()
    other.teardown()


def test_a_sink_waits_for_the_frames_download():
    class Event:
        waited = False

        def synchronize(self) -> None:
            Event.waited = True

    bundle = FrameBundle(0, 0, np.zeros((2, 2, 3), np.uint8), 0.0)
    bundle.wait_for_frame()  # nothing to wait for
    bundle.frame_ready = Event()
    bundle.wait_for_frame()
    assert Event.waited


@pytest.mark.gpu
def test_on_cuda_the_device_frame_path_matches_the_host_path_and_reuses_its_memory(target_checkpoint):
    """Upload → crops → generator (eager FP16) → blend as a CUDA graph → one download, against the
    host path fed the same generated crops; then 60 frames without GPU memory growth."""
    frames = DeviceFrames("cuda")
    stage = _swap_stage(target_checkpoint, frames, backend="eager-cuda")
    blend = BlendStage(LiveSettings(BlendConfig(colour="smoothed")), device="cuda", crop_size=128)
    blend.setup()
    host_blender = GpuBlender("cuda")
    tracker = FaceTracker(TrackConfig(birth_hits=1, crop_size=128, fade_s=0.0))

    def one_frame(index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = index / 60
        frame = make_ground_truth_frame(index % 4, sensor_noise=0)
        bundle = FrameBundle(index, 0, frame.copy(), t, faces=tracker.step([Detection(make_face_landmarks((330, 200), 70))], t, t))
        bundle.device_frame = frames.upload(bundle.frame)
        stage.process(bundle)
        crops = [f.swapped.host() for f in bundle.faces]
        blend.process(bundle)
        bundle.wait_for_frame()
        for face, swapped in zip(bundle.faces, crops, strict=True):
            face.swapped = swapped
        expected = host_blender.composite(frame.copy(), bundle.faces, t, BlendConfig(colour="smoothed"))
        return bundle.frame, expected, frame

    got, expected, frame = one_frame(0)
    for index in range(1, 5):
        got, expected, frame = one_frame(index)
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
        assert np.array_equal(got[:60], frame[:60])
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    for index in range(5, 65):
        one_frame(index)
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() <= before + (1 << 20)
    assert stage.describe()["faces_swapped_on_device"] >= 60
    blend.teardown()
    host_blender.close()


def test_the_capture_stage_uploads_each_frame_for_the_stages_that_share_the_uploader():
    from realtime.app import device_frames_of
    from realtime.stages.capture import CaptureStage
    from realtime.testing import PassThroughStage, SyntheticSource

    frames = DeviceFrames("cpu")
    swap = SwapStage.__new__(SwapStage)  # only its ``frames`` attribute matters here
    swap.frames = frames
    assert device_frames_of([PassThroughStage(), swap]) is frames and device_frames_of([PassThroughStage()]) is None
    capture = CaptureStage(SyntheticSource(3), paced=False, uploader=frames)
    capture.setup()
    bundle = capture.read()
    assert bundle is not None and bundle.device_frame is not None
    assert np.array_equal(bundle.device_frame.tensor.numpy(), bundle.frame)
    frames.disable("test")
    assert capture.read().device_frame is None
    capture.teardown()


def test_cuda_and_cuda_0_are_the_same_device(monkeypatch):
    from realtime.gpu.frames import same_device

    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)  # no GPU needed: 'cuda' means the current one
    assert same_device(torch.device("cuda"), torch.device("cuda:0")) and same_device(torch.device("cuda:0"), torch.device("cuda"))
    assert not same_device(torch.device("cuda"), torch.device("cuda:1"))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    assert same_device(torch.device("cuda"), torch.device("cuda:1")) and not same_device(torch.device("cuda"), torch.device("cuda:0"))
    assert same_device(torch.device("cpu"), torch.device("cpu"))
    assert not same_device(torch.device("cpu"), torch.device("cuda:0"))
    assert same_device(torch.device("cuda:1"), torch.device("cuda:1")) and not same_device(torch.device("cuda:0"), torch.device("cuda:1"))
