"""Blend: masks, colour matching, paste-back with an identity generator, CPU/torch parity, controls."""

import logging
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from realtime.bundle import Detection, FrameBundle
from realtime.config import BlendConfig, TrackConfig
from realtime.errors import ConfigError
from realtime.stages.blend import BlendControls, BlendStage, ControlsFileWatcher
from realtime.stages.track import FaceTracker
from realtime.testing import make_face_landmarks, make_ground_truth_frame
from realtime.vision.align import apply_affine, invert_affine, warp_crop
from realtime.vision.colour import STATS_STEP, ColourSmoother, from_lab, masked_stats, to_lab, transfer
from realtime.vision.composite import paste_crop
from realtime.vision.composite_torch import lab_to_rgb, paste_crop_torch, rgb_to_lab
from realtime.vision.landmarks import INNER_LIPS
from realtime.vision.masks import face_mask


def _bundle(frame, t=0.0, tracker=None, landmarks=None):
    tracker = tracker or FaceTracker(TrackConfig(birth_hits=1, crop_size=256, fade_s=0.0))
    bundle = FrameBundle(0, 0, frame.copy(), t)  # the blend writes into the frame in place
    bundle.faces = tracker.step([Detection(landmarks if landmarks is not None else make_face_landmarks((330, 200), 70))], t, t)
    return bundle


def _identity_swap(bundle):
    """What a generator that returns its input crop would write."""
    for face in bundle.faces:
        face.swapped_crop = warp_crop(bundle.frame, face.crop_from_frame, face.crop_size)
    return bundle


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


def test_colour_smoother_follows_slowly():
    smoother = ColourSmoother(0.5)
    from realtime.vision.colour import ColourStats

    first = smoother.update(1, 0.0, ColourStats(np.zeros(3), np.ones(3)))
    later = smoother.update(1, 1 / 30, ColourStats(np.full(3, 30.0), np.ones(3)))
    assert np.allclose(first.mean, 0) and 0 < later.mean[0] < 3  # one frame moves it ~6%
    smoother.forget(set())
    assert smoother.state == {}


@pytest.mark.parametrize("colour", ["off", "per_frame", "smoothed"])
def test_identity_generator_gives_back_the_input(colour):
    frame = make_ground_truth_frame(0, sensor_noise=0)
    bundle = _identity_swap(_bundle(frame))
    out = BlendStage(BlendControls(BlendConfig(colour=colour))).process(bundle).frame
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
        face.swapped_crop = np.full_like(face.swapped_crop, 255)
    out = BlendStage(BlendControls(BlendConfig(colour="off", opacity=0.0))).process(bundle).frame
    assert np.array_equal(out, frame)


def test_torch_lab_matches_opencv():
    rgb = np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    ours = rgb_to_lab(torch.from_numpy(rgb).float() / 255).numpy()
    assert np.abs(ours - to_lab(rgb)).max() < 0.6
    back = (lab_to_rgb(torch.from_numpy(ours)) * 255).round().numpy()
    assert np.abs(back - rgb).max() <= 1


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


def test_cpu_and_torch_paste_agree():
    assert _paste_parity("cpu") <= 3  # OpenCV's fixed-point bilinear weights vs float


def _stage_parity(device: str) -> None:
    frame = make_ground_truth_frame(0, sensor_noise=0)
    a = BlendStage(BlendControls(BlendConfig(colour="per_frame")), device="cpu").process(_identity_swap(_bundle(frame))).frame
    torch_stage = BlendStage(BlendControls(BlendConfig(colour="per_frame")), device=device)
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
    controls = BlendControls(BlendConfig(colour="off"))
    stage = BlendStage(controls)
    tracker = FaceTracker(TrackConfig(birth_hits=1, crop_size=256, fade_s=0.0))
    frame = make_ground_truth_frame(0, sensor_noise=0)

    def white_swap(t):
        bundle = _bundle(frame, t, tracker)
        for face in bundle.faces:
            face.swapped_crop = np.full((256, 256, 3), 255, np.uint8)
        return bundle

    assert not np.array_equal(stage.process(white_swap(0.0)).frame, frame)
    controls.update(opacity=0.0)
    assert np.array_equal(stage.process(white_swap(1 / 30)).frame, frame)
    with pytest.raises(ConfigError):
        controls.update(opacity=2.0)
    with pytest.raises(ConfigError, match="cannot change live"):
        controls.update(blend_device="cuda")
    assert controls.snapshot().opacity == 0.0


def test_controls_file_is_reread_when_it_changes(tmp_path: Path, caplog):
    path = tmp_path / "live.toml"
    controls = BlendControls(BlendConfig())
    watcher = ControlsFileWatcher(path, controls)
    assert watcher.poll() is False  # no file yet
    path.write_text("[blend]\nopacity = 0.5\nkeep_mouth = true\n")
    assert watcher.poll() is True and controls.snapshot().opacity == 0.5 and controls.snapshot().keep_mouth
    assert watcher.poll() is False  # unchanged
    time.sleep(0.01)
    path.write_text("[blend]\nopacity = 7\n")
    import os

    os.utime(path, (time.time() + 5, time.time() + 5))
    with caplog.at_level(logging.WARNING, logger="realtime"):
        assert watcher.poll() is False
    assert controls.snapshot().opacity == 0.5 and any("ignoring" in r.message for r in caplog.records)


@pytest.mark.parametrize("device", ["cpu", "torch-cpu"])
def test_smoothed_colour_flickers_less_than_per_frame(device):
    """A generator whose colour wobbles frame to frame: smoothed statistics steady the result
    (OpenCV path, and the torch path whose smoother state lives on the device)."""
    rng = np.random.default_rng(3)
    frame = make_ground_truth_frame(0, sensor_noise=0)
    results = {}
    for mode in ("off", "per_frame", "smoothed"):
        stage = BlendStage(BlendControls(BlendConfig(colour=mode, colour_smoothing_s=0.5)), device=device)
        stage.setup()
        tracker = FaceTracker(TrackConfig(birth_hits=1, crop_size=256, fade_s=0.0))
        outputs = []
        for i in range(20):
            bundle = _identity_swap(_bundle(frame, i / 30, tracker))
            gain = rng.uniform(0.8, 1.2, 3)
            for face in bundle.faces:
                face.swapped_crop = np.clip(face.swapped_crop * gain, 0, 255).astype(np.uint8)
            outputs.append(stage.process(bundle).frame.astype(np.float32))
        face_box = (slice(150, 300), slice(260, 400))
        results[mode] = np.mean([np.abs(b[face_box] - a[face_box]).mean() for a, b in zip(outputs[5:], outputs[6:], strict=False)])
    assert results["per_frame"] < results["off"]
    assert results["smoothed"] < results["per_frame"]


@pytest.mark.parametrize("keep", [False, True])
def test_device_mask_matches_the_opencv_mask(keep):
    from realtime.vision.composite_torch import face_mask_torch

    landmarks = make_face_landmarks((128, 110), 70)
    options = {"erode": 0.05, "blur": 0.12, "keep_mouth": keep, "keep_eyes": keep}
    cpu = face_mask(landmarks, 256, **options)
    ours = face_mask_torch(landmarks, 256, "cpu", **options).numpy()
    assert ours.shape == (256, 256) and 0 <= ours.min() and ours.max() <= 1.0 + 1e-6
    assert np.abs(cpu - ours).mean() < 0.02  # polygon shrink vs morphological erosion: edges differ by a pixel


def test_generator_mask_is_applied_the_same_on_both_paths():
    frame = make_ground_truth_frame(0, sensor_noise=0)
    outputs = []
    for device in ("cpu", "torch-cpu"):
        stage = BlendStage(BlendControls(BlendConfig(colour="off")), device=device)
        stage.setup()
        bundle = _bundle(frame)
        for face in bundle.faces:
            face.swapped_crop = np.full((256, 256, 3), 255, np.uint8)
            face.swapped_mask = np.zeros((256, 256), np.float32)
            face.swapped_mask[:, :128] = 1.0  # the generator keeps only the left half of its crop
        outputs.append(stage.process(bundle).frame.astype(int))
    cpu, ours = outputs
    changed = np.abs(cpu - frame).sum(axis=2) > 0
    xs = np.nonzero(changed)[1]
    assert changed.any() and xs.max() < 330 + 5  # only the left half of the face (centre x 330)
    diff = np.abs(cpu - ours)
    # white over the face: the two masks' edges (erosion vs polygon shrink) differ by about a pixel
    assert diff.mean() < 0.3 and np.percentile(diff, 99.9) <= 16, (diff.mean(), np.percentile(diff, 99.9))


def test_region_bucket_holds_the_box_and_stays_in_the_frame():
    from realtime.stages.blend.region import bucket_box

    for box, size in [((10, 20, 150, 170), (640, 480)), ((600, 400, 640, 480), (640, 480)), ((0, 0, 700, 300), (640, 480))]:
        x0, y0, x1, y1 = bucket_box(box, *size)
        assert 0 <= x0 and 0 <= y0 and x1 <= size[0] and y1 <= size[1]
        assert x0 <= max(box[0], 0) and y0 <= box[1] and x1 >= min(box[2], size[0]) and y1 >= box[3]
        assert (x1 - x0) % 64 == 0 or x1 - x0 == size[0]
        assert (y1 - y0) % 64 == 0 or y1 - y0 == size[1]
        assert x1 - x0 == y1 - y0 or y1 - y0 == size[1] or x1 - x0 == size[0]  # square unless clipped
    # a face that moves a few pixels keeps its region shape (the same CUDA graph)
    a, b = bucket_box((100, 100, 250, 260), 1920, 1080), bucket_box((103, 98, 255, 262), 1920, 1080)
    assert (a[2] - a[0], a[3] - a[1]) == (b[2] - b[0], b[3] - b[1])


def test_face_plan_maps_are_the_matrix_products_and_the_box_holds_the_warped_crop():
    """The per-frame geometry, written with scalars for speed, against the plain 3×3 products."""
    from realtime.stages.blend.region import plan_face
    from realtime.vision.composite_torch import box_of

    bundle = _identity_swap(_bundle(make_ground_truth_frame(0, sensor_noise=0)))
    face = bundle.faces[0]
    plan = plan_face(face, 640, 480, BlendConfig(), has_mask=False, colour_weight=1.0)
    assert plan is not None
    x0, y0 = plan.box[:2]
    full = np.vstack([face.crop_from_frame, [0, 0, 1]])
    assert np.allclose(plan.crop_from_region, (full @ np.array([[1.0, 0, x0], [0, 1.0, y0], [0, 0, 1]]))[:2])
    region_from_small = np.array([[1.0, 0, -x0], [0, 1.0, -y0]]) @ np.linalg.inv(np.vstack([face.crop_from_frame / STATS_STEP, [0, 0, 1]]))
    assert np.allclose(plan.region_from_small, region_from_small)
    corners = apply_affine(face.frame_from_crop, np.array([[0, 0], [256, 0], [0, 256], [256, 256]], float))
    box = box_of(face.frame_from_crop, 256, 640, 480)
    assert box == (int(np.floor(corners[:, 0].min())), int(np.floor(corners[:, 1].min())), int(np.ceil(corners[:, 0].max())) + 1, int(np.ceil(corners[:, 1].max())) + 1)
    shifted = face.frame_from_crop + np.array([[0, 0, 5000.0], [0, 0, 0]])  # wholly right of the frame
    assert box_of(shifted, 256, 640, 480) is None


@pytest.mark.gpu
def test_a_region_shape_not_built_ahead_is_built_in_its_first_frame_and_counted():
    """Live, a face of a size not built ahead gets its graph in that frame (counted, logged), and
    the graph gives the pixels of the torch-cpu maths."""
    from realtime.stages.blend.gpu import GpuBlender

    settings = BlendConfig(colour="per_frame")
    blender, reference = GpuBlender("cuda"), GpuBlender("torch-cpu")
    blender.live = True
    frame = make_ground_truth_frame(0, sensor_noise=0)
    bundle = _identity_swap(_bundle(frame))
    first = blender.composite(frame.copy(), bundle.faces, 0.0, settings)
    second = blender.composite(frame.copy(), bundle.faces, 0.0, settings)
    assert blender.shapes_built_live == 1 and len(blender.slots) == 1
    expected = reference.composite(frame.copy(), bundle.faces, 0.0, settings)
    for got in (first, second):
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 3  # CUDA vs CPU maths, as the other cross-device tests
    blender.close()


def _fused_and_eager(device: str, colour: str) -> tuple[torch.Tensor, torch.Tensor]:
    from realtime.stages.blend.region import (
        RegionShape,
        blend_region,
        fused_crop_core,
        new_colour_state,
        pack_params,
        params_size,
    )
    from realtime.vision.composite_torch import mask_holes, mask_sizes

    frame = make_ground_truth_frame(0, sensor_noise=0)
    face = _identity_swap(_bundle(frame)).faces[0]
    x0, y0, x1, y1 = 200, 60, 456, 316
    landmarks = apply_affine(face.crop_from_frame, face.landmarks)
    crop_from_region = face.crop_from_frame @ np.array([[1.0, 0, x0], [0, 1.0, y0], [0, 0, 1.0]])
    region_from_small = np.array([[1.0, 0, -x0], [0, 1.0, -y0]]) @ np.vstack([invert_affine(face.crop_from_frame / 8), [0, 0, 1]])
    params = pack_params(np.empty(params_size(478), np.float32), landmarks, mask_sizes(landmarks, 0.05, 0.12), 1.0, 1.0, crop_from_region, region_from_small)
    shape = RegionShape(y1 - y0, x1 - x0, 256, 478, mask_holes(True, False), False, colour != "off")
    inputs = [torch.from_numpy(a).to(device) for a in (frame[y0:y1, x0:x1].copy(), face.swapped_crop, np.zeros((256, 256), np.float32), params)]
    eager, _ = blend_region(*inputs, new_colour_state(device), shape)
    fused, _ = blend_region(*inputs, new_colour_state(device), shape, fused_crop_core(shape))
    return fused.cpu(), eager.cpu()


def test_the_fused_crop_space_maths_give_the_eager_pixels():
    """torch.compile of the mask and colour maths (Inductor's CPU code here; Triton on CUDA)."""
    fused, eager = _fused_and_eager("cpu", "smoothed")
    assert (fused.int() - eager.int()).abs().max() <= 1


@pytest.mark.gpu
def test_the_fused_crop_space_maths_give_the_eager_pixels_on_cuda():
    for colour in ("off", "smoothed"):
        fused, eager = _fused_and_eager("cuda", colour)
        assert (fused.int() - eager.int()).abs().max() <= 1


def test_region_sizes_cover_every_box_of_the_usual_face_sizes():
    from realtime.stages.blend.region import bucket_box, region_sizes

    sizes = set(region_sizes(1920, 1080))
    assert (128, 128) in sizes and (1024, 1024) in sizes and len(sizes) == 15
    rng = np.random.default_rng(0)
    for _ in range(200):
        w, h = rng.integers(100, 1000, 2)
        x0, y0 = rng.integers(0, 1920 - w), rng.integers(0, 1080 - h)
        x0, y0, x1, y1 = bucket_box((x0, y0, x0 + w, y0 + h), 1920, 1080)
        assert (y1 - y0, x1 - x0) in sizes
    assert set(region_sizes(640, 480)) >= {(480, 512), (480, 640)}  # clipped to a small frame


def test_shapes_built_ahead_serve_faces_of_every_usual_size():
    """After ``prebuild`` a face that grows from small to large never needs a new region shape
    (on CUDA: never a graph capture beside the live frames)."""
    from realtime.stages.blend.gpu import GpuBlender

    settings = BlendConfig(colour="smoothed")
    blender = GpuBlender("torch-cpu")
    assert blender.prebuild(256, settings, 1920, 1080) == 15
    assert blender.prebuild(256, settings, 1920, 1080) == 0  # already there
    shapes = set(blender.slots)
    frame = np.zeros((1080, 1920, 3), np.uint8)
    for iod in (40, 70, 110, 160):
        bundle = _identity_swap(_bundle(frame, landmarks=make_face_landmarks((900, 540), iod)))
        blender.composite(frame.copy(), bundle.faces, 0.0, settings)
        assert set(blender.slots) == shapes, iod


@pytest.mark.gpu
def test_on_cuda_shapes_built_ahead_blend_every_size_as_graphs_sharing_one_pool():
    """Built ahead from set-up on: no face blends op by op; graphs of different sizes that share one
    memory pool, replayed in turns, still give the CPU path's pixels."""
    settings = BlendConfig(colour="smoothed")
    stage = BlendStage(BlendControls(settings), device="cuda", crop_size=256, frame_size=(1920, 1080))
    stage.setup()  # builds the usual shapes before returning
    reference = BlendStage(BlendControls(settings), device="torch-cpu", crop_size=256)
    reference.setup()
    frame = make_ground_truth_frame(0, sensor_noise=0)
    frame = np.ascontiguousarray(np.pad(frame, ((0, 1080 - frame.shape[0]), (0, 1920 - frame.shape[1]), (0, 0)), mode="edge"))
    for step, iod in enumerate((40, 110, 40, 160, 110)):
        trackers = [FaceTracker(TrackConfig(birth_hits=1, crop_size=256, fade_s=0.0)) for _ in range(2)]
        outputs = []
        for blend, tracker in zip((stage, reference), trackers, strict=True):
            bundle = _identity_swap(_bundle(frame, step / 30, tracker, make_face_landmarks((330, 240), iod)))
            outputs.append(blend.process(bundle).frame.astype(int))
        assert np.abs(outputs[0] - outputs[1]).max() <= 3, iod
    assert stage.describe()["shapes_built_live"] == 0
    stage.teardown()


def test_fusing_follows_its_mode_and_the_kernels_build_engines_saved(tmp_path, caplog):
    from realtime.stages.blend.kernels import blend_cache_path

    stage = BlendStage(device="cuda", crop_size=256, engines_dir=str(tmp_path))
    assert stage._fuse("off") is False
    assert stage._fuse("auto") is False and stage.fused_kernels is None  # nothing saved: not worth a 40-s start
    assert stage._fuse("on") is True and "compiled at start" in stage.fused_kernels
    (tmp_path / "blend-fused-256px-cuda-sm_90-torch2.0-0123456789ab.inductor-cache.bin").write_bytes(b"older code's kernels")
    with caplog.at_level(logging.INFO, logger="realtime"):
        assert stage._fuse("auto") is False  # kernels of other code are never loaded, and the log says how to rebuild
    assert "for another GPU, torch or blend code" in caplog.text and "build-engines" in caplog.text
    saved = blend_cache_path(tmp_path, 256)
    saved.write_bytes(b"not inductor's artifacts")
    assert stage._fuse("auto") is False  # a corrupt file is refused, with a line that says how to rebuild it
    assert "unusable" in caplog.text and "build-engines" in caplog.text
    assert BlendStage(device="cpu", engines_dir=str(tmp_path))._fuse("on") is False  # OpenCV path: nothing to fuse
    assert blend_cache_path(tmp_path, 128) != saved and "256px" in saved.name


@pytest.mark.gpu
def test_kernels_saved_by_build_engines_make_auto_fuse_and_blend_like_the_cpu(tmp_path):
    from realtime.stages.blend.kernels import build_blend_cache

    name = build_blend_cache(256, False, tmp_path)
    assert (tmp_path / name).stat().st_size > 0 and not list(tmp_path.glob(".*partial"))
    settings = BlendConfig(colour="smoothed", blend_compile="auto")
    stage = BlendStage(BlendControls(settings), device="cuda", crop_size=256, engines_dir=str(tmp_path))
    stage.setup()
    assert stage.describe()["fused"] is True and stage.describe()["fused_kernels"] == name
    reference = BlendStage(BlendControls(settings), device="torch-cpu", crop_size=256)
    reference.setup()
    frame = make_ground_truth_frame(0, sensor_noise=0)
    outputs = []
    for blend in (stage, reference):
        tracker = FaceTracker(TrackConfig(birth_hits=1, crop_size=256, fade_s=0.0))
        bundle = _identity_swap(_bundle(frame, 0.0, tracker, make_face_landmarks((330, 240), 70)))
        blend.process(bundle)
        outputs.append(blend.process(_identity_swap(_bundle(frame, 1 / 30, tracker, make_face_landmarks((330, 240), 70)))).frame.astype(int))
    assert np.abs(outputs[0] - outputs[1]).max() <= 3
    stage.teardown()


def test_the_fused_kernels_fingerprint_covers_every_module_their_code_imports():
    from realtime.stages.blend.kernels import code_fingerprint, fused_code_modules

    modules = fused_code_modules()
    assert {"realtime.stages.blend.region", "realtime.vision.composite_torch", "realtime.vision.colour", "realtime.vision.align"} <= set(modules)
    base = code_fingerprint()
    for name in modules:
        short = name.rsplit(".", 1)[-1]

        def changed(path: Path, short: str = short) -> bytes:
            data = path.read_bytes()
            return data + b"\n# edited\n" if path.stem == short else data

        assert code_fingerprint(changed) != base, f"a change to {name} would load stale kernels"
    assert code_fingerprint() == base


@pytest.mark.parametrize("iod", [12.0, 37.5, 60.0, 140.0, 900.0])
def test_the_torch_masks_use_the_cpu_rules_and_cap_only_what_the_gpu_must(iod):
    from realtime.stages.blend import region
    from realtime.vision import colour, composite_torch, masks

    landmarks = make_face_landmarks((128, 110), iod)
    erode, margin, radius = masks.mask_sizes(iod, 0.05, 0.12)
    t_erode, t_margin, t_sigma = composite_torch.mask_sizes(landmarks, 0.05, 0.12)
    assert (t_erode, t_margin) == (erode, margin)
    assert t_sigma == min(radius, composite_torch.MAX_BLUR_RADIUS) / 2.0
    assert region.MIN_STATS_PIXELS is colour.MIN_STATS_PIXELS and region.MAX_GAIN is colour.MAX_GAIN
    assert colour.smoothing_weight(0.5, 0.5) == pytest.approx(1 - np.exp(-1)) and colour.smoothing_weight(0.1, 0.0) == 1.0
