"""The GPU blender (stages/blend: gpu, region, kernels): region shapes, the pure face plan, fused maths, saved kernels."""

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from test_blend import _bundle, _identity_swap  # noqa: F401

from realtime.config import BlendConfig, TrackConfig
from realtime.live import LiveSettings
from realtime.stages.blend import BlendStage
from realtime.stages.track import FaceTracker
from realtime.testing import make_face_landmarks, make_ground_truth_frame
from realtime.vision.align import apply_affine, invert_affine
from realtime.vision.colour import STATS_STEP


def test_region_bucket_holds_the_box_and_stays_in_the_frame():
    from realtime.stages.blend.plan import bucket_box

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
    from realtime.stages.blend.plan import plan_face
    from realtime.vision.align import box_of

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
    from realtime.vision.masks_torch import mask_holes, mask_sizes

    frame = make_ground_truth_frame(0, sensor_noise=0)
    face = _identity_swap(_bundle(frame)).faces[0]
    x0, y0, x1, y1 = 200, 60, 456, 316
    landmarks = apply_affine(face.crop_from_frame, face.landmarks)
    crop_from_region = face.crop_from_frame @ np.array([[1.0, 0, x0], [0, 1.0, y0], [0, 0, 1.0]])
    region_from_small = np.array([[1.0, 0, -x0], [0, 1.0, -y0]]) @ np.vstack([invert_affine(face.crop_from_frame / 8), [0, 0, 1]])
    params = pack_params(np.empty(params_size(478), np.float32), landmarks, mask_sizes(landmarks, 0.05, 0.12), 1.0, 1.0, crop_from_region, region_from_small)
    shape = RegionShape(y1 - y0, x1 - x0, 256, 478, mask_holes(True, False), False, colour != "off")
    inputs = [torch.from_numpy(a).to(device) for a in (frame[y0:y1, x0:x1].copy(), face.swapped.crop, np.zeros((256, 256), np.float32), params)]
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
    from realtime.stages.blend.plan import bucket_box, region_sizes

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
    stage = BlendStage(LiveSettings(settings), device="cuda", crop_size=256, frame_size=(1920, 1080))
    stage.setup()  # builds the usual shapes before returning
    reference = BlendStage(LiveSettings(settings), device="torch-cpu", crop_size=256)
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
    stage = BlendStage(LiveSettings(settings), device="cuda", crop_size=256, engines_dir=str(tmp_path))
    stage.setup()
    assert stage.describe()["fused"] is True and stage.describe()["fused_kernels"] == name
    reference = BlendStage(LiveSettings(settings), device="torch-cpu", crop_size=256)
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


def test_the_fused_kernels_fingerprint_does_not_cover_the_config_or_the_planning():
    """Saved kernels go stale when the maths they hold changes, not when a help text or a new
    option in config.py does (they would then be refused, and the blend would run unfused until
    engines were rebuilt): the config, the record and the planning are no part of that maths."""
    from realtime.stages.blend.kernels import fused_code_modules

    modules = fused_code_modules()
    assert "realtime.config" not in modules
    assert not {"realtime.bundle", "realtime.options", "realtime.stages.blend.plan"} & set(modules)


def test_the_fused_kernels_fingerprint_covers_every_module_their_code_imports():
    from realtime.stages.blend.kernels import code_fingerprint, fused_code_modules

    modules = fused_code_modules()
    assert {
        "realtime.stages.blend.region", "realtime.vision.masks_torch", "realtime.vision.colour_torch", "realtime.vision.composite_torch",
        "realtime.vision.align_torch", "realtime.vision.colour", "realtime.vision.masks", "realtime.vision.align", "realtime.gpu.constants",
    } <= set(modules)
    base = code_fingerprint()
    for name in modules:
        short = name.rsplit(".", 1)[-1]

        def changed(path: Path, short: str = short) -> bytes:
            data = path.read_bytes()
            return data + b"\n# edited\n" if path.stem == short else data

        assert code_fingerprint(changed) != base, f"a change to {name} would load stale kernels"
    assert code_fingerprint() == base
