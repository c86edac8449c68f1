"""Users' occluders and face parsers (realtime/byo/masks): detection by content, the converter
against onnxruntime on stand-ins with each family's exact signature, and what reaches the viewer:
an all-ones occluder changes nothing, an all-zeros one gives the frame back, an occluder that
marks a hand keeps the hand in the blended frame (both blenders), a known label map gives the
exact region mask."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from realtime.bundle import Detection, FrameBundle  # noqa: E402
from realtime.byo.masks import profiles  # noqa: E402
from realtime.byo.masks.masker import FaceMasker, load_mask_model  # noqa: E402
from realtime.byo.masks.profiles import REGION_IDS, detect_mask_profile, region_ids  # noqa: E402
from realtime.byo.masks.refine import refine_mask  # noqa: E402
from realtime.choices import ParserRegion  # noqa: E402
from realtime.config import BlendConfig, DetectConfig, SwapConfig, TrackConfig  # noqa: E402
from realtime.errors import ConfigError, ModelError  # noqa: E402
from realtime.live import LiveSettings  # noqa: E402
from realtime.models.onnx.graph import inspect_onnx, load_onnx  # noqa: E402
from realtime.stages.blend import BlendStage  # noqa: E402
from realtime.stages.swap import SwapStage  # noqa: E402
from realtime.stages.track import FaceTracker  # noqa: E402
from realtime.testing import make_face_landmarks, make_ground_truth_frame  # noqa: E402
from realtime.testing_masks import (  # noqa: E402
    CLASSES,
    make_bisenet_standin,
    make_colour_key_occluder,
    make_label_map_parser,
    make_xseg_standin,
)
from realtime.testing_onnx import make_arcface_standin, make_inswapper_standin  # noqa: E402

OCCLUDERS = ("xseg_facefusion", "xseg_visomaster", "occluder_visomaster")
RNG = np.random.default_rng(0)


# ---- detection -----------------------------------------------------------------------------------

@pytest.mark.parametrize("family", OCCLUDERS)
def test_each_occluder_family_is_detected_by_its_signature(tmp_path, family):
    path = make_xseg_standin(tmp_path / "any-name.onnx", family, base=2)
    binding = detect_mask_profile(inspect_onnx(path), "occluder")
    assert binding.profile.name == family
    assert binding.input_name == profiles.PROFILES[family].input_name


def test_the_parser_is_detected_by_its_signature_and_its_auxiliary_heads_are_not_read(tmp_path):
    path = make_bisenet_standin(tmp_path / "resnet_34.onnx", base=2)
    info = inspect_onnx(path)
    assert [o.name for o in info.outputs] == ["output", "aux16", "aux32"]
    binding = detect_mask_profile(info, "parser")
    assert binding.profile.name == "bisenet" and binding.output_index == 0


def test_a_pinned_sha256_wins_over_the_signature(tmp_path, monkeypatch):
    """VisoMaster's two NCHW files share their shapes: a pinned hash decides even against names."""
    path = make_xseg_standin(tmp_path / "XSeg_model.onnx", "xseg_visomaster", base=2)
    info = inspect_onnx(path)
    assert detect_mask_profile(info, "occluder").profile.name == "xseg_visomaster"
    monkeypatch.setitem(profiles.KNOWN_SHA256, info.sha256, "occluder_visomaster")
    assert detect_mask_profile(info, "occluder").profile.name == "occluder_visomaster"


def _rename_io(source: Path, target: Path, input_name: str, output_name: str) -> Path:
    model = onnx.load(str(source))
    old_in, old_out = model.graph.input[0].name, model.graph.output[0].name
    for node in model.graph.node:
        node.input[:] = [input_name if n == old_in else n for n in node.input]
        node.output[:] = [output_name if n == old_out else n for n in node.output]
    model.graph.input[0].name, model.graph.output[0].name = input_name, output_name
    onnx.save(model, str(target))
    return target


def test_an_occluder_with_unknown_names_asks_for_the_profile_flag(tmp_path):
    path = _rename_io(make_colour_key_occluder(tmp_path / "a.onnx", "xseg_visomaster"), tmp_path / "mask.onnx", "x", "y")
    info = inspect_onnx(path)
    with pytest.raises(ModelError) as caught:
        detect_mask_profile(info, "occluder")
    message = str(caught.value)
    assert "\n" not in message and "cannot tell which occluder mask.onnx is" in message
    assert "--occluder-profile with one of xseg_visomaster, occluder_visomaster" in message
    binding = detect_mask_profile(info, "occluder", "occluder_visomaster")  # the flag settles it
    assert binding.profile.name == "occluder_visomaster" and binding.input_name == "x"


def test_files_of_another_kind_are_refused_with_the_fix(tmp_path):
    parser = inspect_onnx(make_label_map_parser(tmp_path / "parser.onnx", np.ones(512, np.int64)))
    with pytest.raises(ModelError, match=r"parser.onnx is a face parser \(bisenet\), not an occluder: pass it to --parser"):
        detect_mask_profile(parser, "occluder")
    occluder = inspect_onnx(make_colour_key_occluder(tmp_path / "xseg_1.onnx"))
    with pytest.raises(ModelError, match=r"is an occluder \(xseg_facefusion\), not a face parser: pass it to --occluder"):
        detect_mask_profile(occluder, "parser")
    for other in (make_inswapper_standin(tmp_path / "inswapper.onnx", base=2, blocks=1), make_arcface_standin(tmp_path / "w600k.onnx")):
        with pytest.raises(ModelError, match="is not an occluder realtime knows") as caught:
            detect_mask_profile(inspect_onnx(other), "occluder")
        assert "xseg_facefusion: input [1, 256, 256, 3]" in caught.value.fix
    with pytest.raises(ModelError, match="unknown occluder profile 'bisenet'"):
        detect_mask_profile(occluder, "occluder", "bisenet")
    with pytest.raises(ModelError, match="does not take what a xseg_visomaster file takes"):
        detect_mask_profile(occluder, "occluder", "xseg_visomaster")  # NHWC is not NCHW


def test_bad_files_are_typed_errors_with_a_one_line_fix(tmp_path):
    cut = tmp_path / "xseg_cut.onnx"
    cut.write_bytes(make_colour_key_occluder(tmp_path / "whole.onnx").read_bytes()[:-40])
    for path in (tmp_path / "missing.onnx", cut):
        with pytest.raises(ModelError) as caught:
            load_mask_model(path, "occluder")
        assert isinstance(caught.value, ValueError) and path.name in str(caught.value)
        assert "\n" not in str(caught.value) and caught.value.fix
    with pytest.raises(ConfigError, match="unknown --parser-regions 'hair'"):
        SwapConfig(parser_regions=("skin,hair",))
    with pytest.raises(ConfigError, match="--parser-regions is empty"):
        SwapConfig(parser_regions=(",",))


def test_the_config_flags_take_profiles_and_regions_as_the_cli_writes_them():
    from realtime.cli.flags import RUN_SECTIONS  # noqa: F401 - the run command's sections include swap

    config = SwapConfig(occluder="x.onnx", occluder_profile="xseg_visomaster", parser_regions=("skin,nose", "brows"))
    assert region_ids(config.parser_regions) == (1, 2, 3, 10)
    assert set(REGION_IDS) == set(ParserRegion.__args__)  # type: ignore[attr-defined]
    assert all(0 < i < CLASSES and i not in (7, 8, 9, 14, 15, 16, 17, 18) for ids in REGION_IDS.values() for i in ids)  # never ears, neck, clothes, hair, hat
    assert region_ids(SwapConfig().parser_regions) == (1, 2, 3, 4, 5, 6, 10, 11, 12, 13)  # FaceFusion's default: every face class


# ---- the converter against onnxruntime -----------------------------------------------------------

def _ort(path: Path, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return list(session.run(None, {session.get_inputs()[0].name: x}))


@pytest.mark.parametrize("family", OCCLUDERS)
def test_converted_xseg_standins_match_onnxruntime_face_by_face_at_batch_two(tmp_path, family):
    """The files declare batch 1 (onnxruntime runs them one face at a time); ours runs both at once."""
    path = make_xseg_standin(tmp_path / f"{family}.onnx", family, base=4)
    module, info = load_onnx(path)
    shape = [2, *[d for d in info.inputs[0].shape[1:]]]
    x = RNG.random(shape, dtype=np.float32)
    expected = np.concatenate([_ort(path, x[i : i + 1])[0] for i in range(2)])
    with torch.no_grad():
        got = module(torch.from_numpy(x)).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_converted_bisenet_standin_matches_onnxruntime_on_every_head(tmp_path):
    path = make_bisenet_standin(tmp_path / "bisenet.onnx", base=4)
    x = RNG.standard_normal((2, 3, 512, 512)).astype(np.float32)
    expected = _ort(path, x)
    module, _ = load_onnx(path)
    with torch.no_grad():
        got = module(torch.from_numpy(x))
    assert len(got) == 3
    for ours, theirs in zip(got, expected, strict=True):
        np.testing.assert_allclose(ours.numpy(), theirs, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "attrs",
    [
        {"output_shape": [10, 10]},  # tf2onnx's conv2d_transpose: the odd pixel cropped at the start
        {"output_shape": [9, 11]},  # an even crop on one axis, none on the other
        {"output_shape": [10, 10], "auto_pad": "SAME_UPPER"},  # the odd pixel cropped at the end
        {"auto_pad": "SAME_UPPER"},
        {"auto_pad": "SAME_LOWER"},
        {"output_shape": [11, 11], "output_padding": [1, 1]},
    ],
)
def test_conv_transpose_pads_made_from_output_shape_or_auto_pad(tmp_path, attrs):
    nodes = [helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], kernel_shape=[3, 3], strides=[2, 2], **attrs)]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 5, 5])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(RNG.standard_normal((3, 2, 3, 3)).astype(np.float32), "w"), numpy_helper.from_array(RNG.standard_normal(2).astype(np.float32), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "t.onnx"
    onnx.save(model, str(path))
    x = RNG.standard_normal((1, 3, 5, 5)).astype(np.float32)
    expected = _ort(path, x)[0]
    module, _ = load_onnx(path)
    with torch.no_grad():
        got = module(torch.from_numpy(x)).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-4)


# ---- what the masks do -----------------------------------------------------------------------------

def test_the_finish_is_facefusions_remap_after_a_crop_relative_blur():
    """Golden numbers: a step edge blurred with σ = 5 px on a 256-px crop (2.5 px on 128) reads
    Φ(d/σ) at d px from the edge, and the remap makes it 2Φ − 1 inside, 0 outside."""
    import math

    ones, zeros = torch.ones(2, 128, 128), torch.zeros(2, 128, 128)
    assert torch.allclose(refine_mask(ones), ones, atol=1e-6) and torch.equal(refine_mask(zeros), zeros)
    for size, sigma in ((256, 5.0), (128, 2.5)):
        step = torch.zeros(1, size, size)
        step[:, :, size // 2 :] = 1.0
        row = refine_mask(step)[0, size // 2]
        for x in range(size // 2 - 10, size // 2 + 15):
            d = x - (size // 2 - 0.5)  # from the edge, between two pixel centres
            phi = 0.5 * (1 + math.erf(d / (sigma * math.sqrt(2))))
            assert float(row[x]) == pytest.approx(max(0.0, 2 * phi - 1), abs=0.01), (size, x)


@pytest.mark.parametrize("family", OCCLUDERS)
def test_an_all_ones_occluder_leaves_the_mask_unchanged_and_all_zeros_removes_it(tmp_path, family):
    crops = torch.from_numpy(RNG.uniform(-1, 1, (3, 3, 128, 128)).astype(np.float32))
    ones = FaceMasker(load_mask_model(make_colour_key_occluder(tmp_path / "1.onnx", family, gain=0.0, offset=30.0), "occluder"), None)
    zeros = FaceMasker(load_mask_model(make_colour_key_occluder(tmp_path / "0.onnx", family, gain=0.0, offset=-30.0), "occluder"), None)
    assert torch.allclose(ones(crops), torch.ones(3, 128, 128), atol=1e-6)
    assert float(zeros(crops).max()) == 0.0


def _face_with_a_hand(hand: bool = True) -> tuple[np.ndarray, list[Detection]]:
    """The ground-truth face with a pure blue block (a 'hand') over its lower middle."""
    frame = make_ground_truth_frame(0, sensor_noise=0)
    if hand:
        frame[200:250, 300:360] = (0, 0, 255)
    return frame, [Detection(make_face_landmarks((330, 200), 70))]


def _swap_and_blend(target_checkpoint: Path, frame: np.ndarray, detections: list[Detection], blend_device: str, **swap: object) -> tuple[np.ndarray, FrameBundle]:
    stage = SwapStage(SwapConfig(generator=str(target_checkpoint), target_identity=1, backends=("cpu",), **swap), TrackConfig(crop_size=128), DetectConfig(max_faces=2))  # type: ignore[arg-type]
    stage.setup()
    bundle = FrameBundle(0, 0, frame.copy(), 0.0)
    bundle.faces = FaceTracker(TrackConfig(birth_hits=1, crop_size=128, fade_s=0.0)).step(detections, 0.0, 0.0)
    stage.process(bundle)
    blend = BlendStage(LiveSettings(BlendConfig(colour="off", detail=0.0)), device=blend_device, crop_size=128, generator_mask=bool(swap))
    blend.setup()
    return blend.process(bundle).frame, bundle


def test_through_the_swap_stage_an_all_ones_occluder_changes_no_mask_and_all_zeros_no_pixel(tmp_path, target_checkpoint):
    frame, detections = _face_with_a_hand(hand=False)
    _, plain = _swap_and_blend(target_checkpoint, frame, detections, "cpu")
    ones = make_colour_key_occluder(tmp_path / "ones.onnx", gain=0.0, offset=30.0)
    _, with_ones = _swap_and_blend(target_checkpoint, frame, detections, "cpu", occluder=str(ones))
    before, after = plain.faces[0].swapped, with_ones.faces[0].swapped
    assert before is not None and after is not None and before.mask is not None and after.mask is not None
    np.testing.assert_allclose(np.asarray(after.mask), np.asarray(before.mask), atol=1e-6)
    assert np.array_equal(np.asarray(after.crop), np.asarray(before.crop))
    zeros = make_colour_key_occluder(tmp_path / "zeros.onnx", gain=0.0, offset=-30.0)
    out, _ = _swap_and_blend(target_checkpoint, frame, detections, "cpu", occluder=str(zeros))
    assert np.array_equal(out, frame)


@pytest.mark.parametrize("blend_device", ["cpu", "torch-cpu"])
@pytest.mark.parametrize("family", OCCLUDERS)
def test_an_occluder_keeps_the_hand_in_front_of_the_swapped_face(tmp_path, target_checkpoint, family, blend_device):
    """A blue block over the face, an occluder that marks blue (read in the family's own colour
    order and layout): the blended frame shows the block where it was, the swap everywhere else.
    Without the occluder the block is painted over (so this test can fail)."""
    frame, detections = _face_with_a_hand()
    hand = (slice(212, 238), slice(312, 348))  # the block, away from its feathered edge
    cheek = (slice(175, 195), slice(290, 310))  # face, no hand
    occluder = make_colour_key_occluder(tmp_path / f"{family}.onnx", family)
    out, bundle = _swap_and_blend(target_checkpoint, frame, detections, blend_device, occluder=str(occluder))
    assert np.array_equal(out[hand], frame[hand])
    assert np.abs(out[cheek].astype(int) - frame[cheek]).mean() > 5  # the swap is there
    swapped = bundle.faces[0].swapped
    assert swapped is not None and swapped.mask is not None and float(np.asarray(swapped.mask).min()) == 0.0
    without, _ = _swap_and_blend(target_checkpoint, frame, detections, blend_device)
    assert np.abs(without[hand].astype(int) - frame[hand]).mean() > 5


def test_an_occluder_runs_on_the_input_crop_not_the_generated_one(tmp_path, target_checkpoint):
    """The generated crop has no blue block; the mask follows the input's."""
    frame, detections = _face_with_a_hand()
    occluder = make_colour_key_occluder(tmp_path / "o.onnx")
    _, bundle = _swap_and_blend(target_checkpoint, frame, detections, "cpu", occluder=str(occluder))
    face = bundle.faces[0]
    assert face.swapped is not None and face.swapped.mask is not None
    mask = np.asarray(face.swapped.mask)
    hand_in_crop = np.round(face.crop_from_frame @ np.array([330.0, 225.0, 1.0])).astype(int)
    assert mask[hand_in_crop[1], hand_in_crop[0]] == 0.0


# ---- the parser -----------------------------------------------------------------------------------

def _labels_left_skin_right_hair(size: int = 512) -> np.ndarray:
    labels = np.full(size, 17, np.int64)  # hair
    labels[: size // 2] = 1  # skin
    return labels


def test_a_known_label_map_gives_the_exact_region_mask(tmp_path):
    path = make_label_map_parser(tmp_path / "bisenet_resnet_18.onnx", _labels_left_skin_right_hair())
    crops = torch.from_numpy(RNG.uniform(-1, 1, (2, 3, 512, 512)).astype(np.float32))
    skin = load_mask_model(path, "parser", regions=region_ids(("skin",)))
    expected = torch.zeros(2, 512, 512)
    expected[:, :, :256] = 1.0
    assert torch.equal(skin.net(crops), expected)  # exactly the left half
    nose = load_mask_model(path, "parser", regions=region_ids(("nose,brows",)))
    assert float(nose.net(crops).max()) == 0.0  # no such class in the map
    labels = _labels_left_skin_right_hair()
    labels[384:] = 11  # the right quarter is mouth
    mouthed = load_mask_model(make_label_map_parser(tmp_path / "m.onnx", labels), "parser", regions=region_ids(("skin", "mouth")))
    assert torch.equal(mouthed.net(crops)[0, 0], torch.tensor([1.0] * 256 + [0.0] * 128 + [1.0] * 128))


def test_a_parser_region_mask_reaches_the_swapped_face_and_leaves_the_rest_real(tmp_path, target_checkpoint):
    """Left half of every crop is skin, the right half mouth: with --parser-regions skin only the
    left of the face is swapped (the input's own pixels elsewhere), through both blenders."""
    labels = np.full(512, 11, np.int64)
    labels[:256] = 1
    parser = make_label_map_parser(tmp_path / "bisenet.onnx", labels)
    frame, detections = _face_with_a_hand(hand=False)
    for device in ("cpu", "torch-cpu"):
        out, bundle = _swap_and_blend(target_checkpoint, frame, detections, device, parser=str(parser), parser_regions=("skin",))
        face = bundle.faces[0]
        crop_right = np.round(face.frame_from_crop @ np.array([110.0, 64.0, 1.0])).astype(int)  # far right of the crop, in the frame
        crop_left = np.round(face.frame_from_crop @ np.array([40.0, 64.0, 1.0])).astype(int)
        right = (slice(crop_right[1] - 5, crop_right[1] + 5), slice(crop_right[0] - 5, crop_right[0] + 5))
        left = (slice(crop_left[1] - 5, crop_left[1] + 5), slice(crop_left[0] - 5, crop_left[0] + 5))
        assert np.array_equal(out[right], frame[right]), device
        assert np.abs(out[left].astype(int) - frame[left]).mean() > 5, device


def test_the_parser_reads_the_crop_parser_on_names_and_the_occluder_the_input(tmp_path):
    parser = load_mask_model(make_label_map_parser(tmp_path / "p.onnx", np.full(512, 1, np.int64)), "parser", regions=region_ids(("skin",)))
    occluder = load_mask_model(make_colour_key_occluder(tmp_path / "o.onnx", "xseg_visomaster"), "occluder")
    blue = torch.full((1, 3, 128, 128), -1.0)
    blue[:, 2] = 1.0
    grey = torch.zeros((1, 3, 128, 128))
    assert float(FaceMasker(occluder, None)(blue, grey).max()) == 0.0  # the input is blue: occluded
    assert float(FaceMasker(occluder, None)(grey, blue).min()) > 0.999  # the generated crop is not read
    seen: list[torch.Tensor] = []
    forward = parser.net.forward
    parser.net.forward = lambda crops: (seen.append(crops), forward(crops))[1]  # type: ignore[method-assign]
    FaceMasker(None, parser)(grey, blue)
    FaceMasker(None, parser, parser_on="swapped")(grey, blue)
    assert torch.equal(seen[0], grey) and torch.equal(seen[1], blue)


# ---- doctor ----------------------------------------------------------------------------------------

def test_doctor_lists_occluders_and_parsers_with_family_licence_and_what_runs_them(tmp_path):
    """The NCHW occluders would also fit the identity-encoder rule (one [N,3,H,W] input): the
    mask families are told first. A renamed file is listed with the flag to pass."""
    from realtime.doctor import check_user_models

    folder = tmp_path / "models"
    folder.mkdir()
    for family in OCCLUDERS:
        make_xseg_standin(folder / f"{family}.onnx", family, base=2)
    make_bisenet_standin(folder / "bisenet_resnet_34.onnx", base=2)
    _rename_io(make_colour_key_occluder(tmp_path / "o.onnx", "xseg_visomaster"), folder / "renamed.onnx", "x", "y")
    make_arcface_standin(folder / "w600k_r50.onnx")
    checks = {Path(c.detail.split(":")[0]).name: c for c in check_user_models([folder])}
    ff = checks["xseg_facefusion.onnx"].detail
    assert checks["xseg_facefusion.onnx"].status == "ok" and "occluder xseg_facefusion (256 px NHWC BGR [0,1] → a face probability; --occluder)" in ff
    assert "GPL-3.0" in ff and "runs on our converter" in ff and "sha256" in ff
    assert "occluder xseg_visomaster (256 px NCHW RGB" in checks["xseg_visomaster.onnx"].detail
    assert "occluder occluder_visomaster" in checks["occluder_visomaster.onnx"].detail and "a face logit" in checks["occluder_visomaster.onnx"].detail
    parser = checks["bisenet_resnet_34.onnx"].detail
    assert "parser bisenet (512 px NCHW RGB ImageNet-normalised → 19-class logits; --parser)" in parser and "non-commercial" in parser
    for name in (*(f"{f}.onnx" for f in OCCLUDERS), "bisenet_resnet_34.onnx"):
        gap = float(checks[name].detail.split("max |Δ| vs onnxruntime ")[1])
        assert gap < 1e-3, checks[name].detail
    renamed = checks["renamed.onnx"]
    assert renamed.status == "warn" and "--occluder renamed.onnx --occluder-profile NAME (one of xseg_visomaster, occluder_visomaster)" in renamed.detail
    assert "identity encoder (112×112)" in checks["w600k_r50.onnx"].detail


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_the_hand_stays_in_front_on_the_device_frame_path(tmp_path, target_checkpoint, device):
    """The frame kept on the device (gpu/frames.py): crops cut there, the occluder's mask left
    there with the generated crop, blended into the device copy (``composite_device``). On the
    CPU the same code runs as the 'torch-cpu' blender; on CUDA as a CUDA graph."""
    from realtime.gpu.frames import DeviceFrames

    frames = DeviceFrames(device)
    config = SwapConfig(generator=str(target_checkpoint), target_identity=1, backends=("cpu",) if device == "cpu" else ("eager-cuda",), occluder=str(make_colour_key_occluder(tmp_path / "xseg_1.onnx")))
    stage = SwapStage(config, TrackConfig(crop_size=128), DetectConfig(max_faces=2), frames=frames)
    stage.setup()
    blend = BlendStage(LiveSettings(BlendConfig(colour="off", detail=0.0)), device="torch-cpu" if device == "cpu" else "cuda", crop_size=128, generator_mask=True)
    blend.setup()
    frame, detections = _face_with_a_hand()
    bundle = FrameBundle(0, 0, frame.copy(), 0.0)
    bundle.faces = FaceTracker(TrackConfig(birth_hits=1, crop_size=128, fade_s=0.0)).step(detections, 0.0, 0.0)
    bundle.device_frame = frames.upload(bundle.frame)
    stage.process(bundle)
    swapped = bundle.faces[0].swapped
    assert swapped is not None and swapped.on_device and isinstance(swapped.mask, torch.Tensor)
    out = blend.process(bundle)
    out.wait_for_frame()
    hand, cheek = (slice(212, 238), slice(312, 348)), (slice(175, 195), slice(290, 310))
    assert np.array_equal(out.frame[hand], frame[hand])
    assert np.abs(out.frame[cheek].astype(int) - frame[cheek]).mean() > 5
    assert stage.describe()["masks"]["occluder"].startswith("xseg_1.onnx as xseg_facefusion")  # type: ignore[index]
    blend.teardown()
