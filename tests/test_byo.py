"""Users' ONNX swappers: stand-ins built here from the published architectures (nothing
third-party), profile detection, the adapter's conventions, and our own trained AEI-Net exported
behind inswapper's conventions giving the native path's output through the swap stage."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from realtime.byo.profiles import PROFILES, detect_profile  # noqa: E402
from realtime.byo.swapper import load_identity_encoder_onnx, load_swapper  # noqa: E402
from realtime.config import build_config  # noqa: E402
from realtime.errors import ModelError  # noqa: E402
from realtime.generators import GeneratorRequest, generator_geometry, load_spec  # noqa: E402
from realtime.inference.pixel_boost import PixelBoost, join_phases, split_phases  # noqa: E402
from realtime.models.onnx.graph import load_onnx  # noqa: E402
from realtime.testing_onnx import (  # noqa: E402
    export_aei_as_inswapper,
    make_arcface_standin,
    make_dfm_standin,
    make_inswapper_standin,
)
from realtime.vision.align import ARCFACE_112, template_points  # noqa: E402

MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.fixture(scope="module")
def inswapper(tmp_path_factory) -> Path:
    return make_inswapper_standin(tmp_path_factory.mktemp("byo") / "inswapper_standin.onnx", base=4, blocks=2)


def _ort(path: Path, **feeds: np.ndarray) -> list[np.ndarray]:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)


def test_inswapper_standin_matches_onnxruntime_runs_any_batch_and_exports(inswapper):
    graph, info = load_onnx(inswapper)
    rng = np.random.default_rng(0)
    target = rng.random((3, 3, 128, 128), dtype=np.float32)
    source = rng.standard_normal((3, 512)).astype(np.float32)
    expected = np.concatenate([_ort(inswapper, target=target[i : i + 1], source=source[i : i + 1])[0] for i in range(3)])
    with torch.no_grad():
        got = graph(torch.from_numpy(target), torch.from_numpy(source))
    np.testing.assert_allclose(got.numpy(), expected, atol=2e-5)  # batch 3 through a graph declared for 1
    assert info.unused_initializers == ("buff2fs",) and info.last_initializer == "buff2fs"
    exported = torch.export.export(graph, (torch.from_numpy(target[:1]), torch.from_numpy(source[:1])))
    assert exported.module()(torch.from_numpy(target[:1]), torch.from_numpy(source[:1])).shape == (1, 3, 128, 128)


def test_an_fp16_file_loads_as_fp32_and_matches(tmp_path, inswapper):
    fp16 = make_inswapper_standin(tmp_path / "fp16.onnx", base=4, blocks=2, fp16=True)
    full, _ = load_onnx(inswapper)
    half, _ = load_onnx(fp16)
    target, source = torch.rand(1, 3, 128, 128), torch.randn(1, 512)
    with torch.no_grad():
        assert torch.allclose(full(target, source), half(target, source), atol=2e-2)
    assert all(b.dtype != torch.float16 for b in half.buffers())


def test_profile_detection_by_signature_and_override(inswapper, tmp_path):
    _, info = load_onnx(inswapper)
    binding = detect_profile(info)
    assert binding.profile.name == "inswapper_128" and binding.size == 128 and binding.emap == "buff2fs"
    assert detect_profile(info, "reswapper_128").profile.name == "reswapper_128"
    with pytest.raises(ModelError, match="unknown generator profile 'bogus'"):
        detect_profile(info, "bogus")
    with pytest.raises(ModelError, match="takes 128 px crops, not hyperswap_256's 256"):
        detect_profile(info, "hyperswap_256")
    no_emap = make_inswapper_standin(tmp_path / "noemap.onnx", base=4, blocks=1, emap=False)
    with pytest.raises(ModelError, match="cannot tell which swapper noemap.onnx is.*--generator-profile"):
        detect_profile(load_onnx(no_emap)[1])
    with pytest.raises(ModelError, match="no 512×512 latent map"):
        detect_profile(load_onnx(no_emap)[1], "inswapper_128")
    encoder = make_arcface_standin(tmp_path / "arc.onnx")
    with pytest.raises(ModelError, match="cannot tell which swapper"):
        detect_profile(load_onnx(encoder)[1])


def test_converter_families_need_their_converter(tmp_path):
    path = make_inswapper_standin(tmp_path / "ghost.onnx", base=2, blocks=1, emap=False, size=256)
    with pytest.raises(ModelError, match="needs its identity converter.*--identity-converter"):
        load_swapper(path, profile="ghost_256")
    with pytest.raises(ModelError, match="needs inswapper's 512×512 latent map.*--identity-converter inswapper_128.onnx"):
        load_swapper(path, profile="reswapper_256")


def test_the_inswapper_identity_is_the_normalised_embedding_through_the_emap(inswapper):
    _, head, binding, _ = load_swapper(inswapper)
    emap = torch.from_numpy(load_onnx(inswapper)[1].arrays["buff2fs"])
    raw = torch.randn(2, 512) * 7
    expected = torch.nn.functional.normalize(torch.nn.functional.normalize(raw, dim=1) @ emap, dim=1)
    assert head is not None and torch.allclose(head(raw), expected, atol=1e-6)
    assert binding.profile.template == "insightface_128"


def test_insightface_128_template_is_arcface_shifted_not_scaled():
    np.testing.assert_allclose(template_points(128, "insightface_128"), ARCFACE_112 + [8, 0], atol=1e-9)
    np.testing.assert_allclose(template_points(256, "insightface_128"), (ARCFACE_112 + [8, 0]) * 2, atol=1e-9)
    np.testing.assert_allclose(template_points(112, "arcface"), ARCFACE_112)


def test_dfm_standin_through_the_adapter(tmp_path):
    path = make_dfm_standin(tmp_path / "person.onnx", size=64)
    spec = load_spec(GeneratorRequest(path))
    assert spec.architecture == "onnx-dfm" and spec.id_dim is None and spec.crop_size == 64
    crops = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        rgb, mask = spec.module(crops)
    bgr_nhwc = ((crops[:1] + 1) / 2).flip(1).permute(0, 2, 3, 1).numpy()
    _, face, celeb_mask = _ort(path, **{"in_face:0": bgr_nhwc, "morph_value:0": np.array([0.75], np.float32)})
    expected_rgb = torch.from_numpy(face).permute(0, 3, 1, 2).flip(1) * 2 - 1
    assert torch.allclose(rgb[:1], expected_rgb, atol=1e-5)
    assert torch.allclose(mask[:1], torch.from_numpy(celeb_mask).permute(0, 3, 1, 2), atol=1e-5)
    assert rgb.shape == (2, 3, 64, 64) and mask.shape == (2, 1, 64, 64)


def test_identity_encoder_onnx(tmp_path):
    encoder = load_identity_encoder_onnx(make_arcface_standin(tmp_path / "arc.onnx"))
    assert encoder.input_size == (112, 112)
    assert encoder(torch.rand(3, 3, 112, 112)).shape == (3, 512)
    with pytest.raises(ModelError, match="not an identity encoder"):
        load_identity_encoder_onnx(make_dfm_standin(tmp_path / "dfm.onnx"))


def test_pixel_boost_is_a_polyphase_split_and_its_exact_inverse():
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    phases = split_phases(images, 2)
    assert phases.shape == (8, 3, 4, 4)
    assert torch.equal(phases[1], images[0, :, 0::2, 1::2])  # sub-image (a=0, b=1) of face 0
    assert torch.equal(phases[4 + 2], images[1, :, 1::2, 0::2])
    assert torch.equal(join_phases(phases, 2), images)

    class Echo(torch.nn.Module):
        def forward(self, x: torch.Tensor, identity: torch.Tensor) -> tuple[torch.Tensor]:
            return (x + identity[:, :1, None, None],)

    out = PixelBoost(Echo(), 4)(images.repeat(1, 1, 2, 2), torch.tensor([[1.0], [2.0]]))[0]
    assert torch.equal(out, images.repeat(1, 1, 2, 2) + torch.tensor([1.0, 2.0]).reshape(2, 1, 1, 1))


def shipped_core(folder: Path) -> Path:
    """The shipped AEI-Net's trained 128-px core as a checkpoint of its own (inswapper's size): the
    shipped model without its detail stage."""
    from realtime.models.aei_net import AEINet
    from realtime.models.checkpoint import load_checkpoint, save_checkpoint

    shipped, info = load_checkpoint(MODELS / "aei-net-v2.safetensors", expect="aei_net")
    hyperparameters = {k: v for k, v in info.hyperparameters.items() if k != "detail_width"} | {"crop_size": 128}
    core = AEINet(**hyperparameters)
    core.load_state_dict({k: v for k, v in shipped.state_dict().items() if not k.startswith("detail.")})
    save_checkpoint(folder / "core.safetensors", core.half().eval(), architecture="aei_net", hyperparameters=hyperparameters)
    return folder / "core.safetensors"


@pytest.fixture(scope="module")
def aei_core(tmp_path_factory) -> Path:
    return shipped_core(tmp_path_factory.mktemp("aei_core"))


@pytest.fixture(scope="module")
def aei_as_inswapper(tmp_path_factory, aei_core) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("aei_onnx")
    return export_aei_as_inswapper(aei_core, MODELS / "identity-encoder-v1.safetensors", folder / "aei_inswapper.onnx", folder / "encoder_arcface.onnx")


def test_our_trained_aei_net_behind_inswapper_conventions_equals_the_native_path(aei_as_inswapper, aei_core):
    """Same crops, same source photo: the swap stage's output through the ONNX adapter (profile
    detected, ArcFace-style encoder, emap, [0,1] ranges) equals the native checkpoint's."""
    from conftest import has_face_model

    from realtime.stages.swap import SwapStage

    if not has_face_model():
        pytest.skip("no face_landmarker.task available offline (the source photo's face is found with it)")
    generator, encoder = aei_as_inswapper
    assert generator_geometry(GeneratorRequest(generator)) == (128, "insightface_128")
    common = {"source": "demo", "backends": ("cpu",), "crop_size": 128, "template": "insightface_128", "max_faces": 2}
    native = build_config(overrides={**common, "generator": str(aei_core), "identity_encoder": str(MODELS / "identity-encoder-v1.safetensors")})
    byo = build_config(overrides={**common, "generator": str(generator), "identity_encoder": str(encoder)})
    crops = (np.random.default_rng(0).random((2, 128, 128, 3)) * 255).astype(np.uint8)
    outputs = []
    for config in (native, byo):
        stage = SwapStage(config.swap, config.track, replace(config.detect, landmarker_model=None))
        stage.setup()
        images, masks = stage._generate(crops, 2)
        outputs.append(images.numpy().astype(np.int16))
        stage.teardown()
    assert np.abs(outputs[0] - outputs[1]).max() <= 1  # uint8 rounding of FP32 noise
    assert outputs[0].std() > 10  # a real swap, not a blank


# What each family expects, from its public description (shared/BYO-MODELS.md, FaceFusion's table):
# crop template, crop size (0: read from the file), the range the network's input takes for RGB in
# [0,1], the range its output gives for [0,1], how the identity is made, and the input layout. A
# wrong entry feeds the network a shifted or scaled picture, or pastes a face aligned to the wrong
# template: a swap that looks washed out, dark or misplaced, with no error.
IMAGENET_LOW = tuple(-m / s for m, s in zip((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), strict=True))
IMAGENET_HIGH = tuple((1 - m) / s for m, s in zip((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), strict=True))
FAMILIES = {
    # name: (template, size, input range (low, high) per channel, output range for [0,1], identity, layout)
    "inswapper_128": ("insightface_128", 128, ((0, 0, 0), (1, 1, 1)), (0, 1), "arcface_emap", "nchw_rgb"),
    "reswapper_128": ("insightface_128", 128, ((0, 0, 0), (1, 1, 1)), (0, 1), "arcface_emap", "nchw_rgb"),
    "reswapper_256": ("insightface_128", 256, ((0, 0, 0), (1, 1, 1)), (0, 1), "arcface_emap", "nchw_rgb"),
    "hyperswap_256": ("insightface_128", 256, ((-1, -1, -1), (1, 1, 1)), (-1, 1), "arcface_norm", "nchw_rgb"),
    "simswap_256": ("arcface_112_v1", 256, (IMAGENET_LOW, IMAGENET_HIGH), (0, 1), "arcface_converted", "nchw_rgb"),
    "simswap_512": ("arcface_112_v1", 512, ((0, 0, 0), (1, 1, 1)), (0, 1), "arcface_converted", "nchw_rgb"),
    "ghost_256": ("arcface_112_v1", 256, ((-1, -1, -1), (1, 1, 1)), (-1, 1), "arcface_converted_raw", "nchw_rgb"),
    "dfm": ("ffhq", 0, ((0, 0, 0), (1, 1, 1)), (0, 1), "baked", "nhwc_bgr"),
}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_each_profile_feeds_its_family_what_it_was_trained_on(name):
    template, size, (low, high), (out_low, out_high), source, layout = FAMILIES[name]
    profile = PROFILES[name]
    assert (profile.name, profile.template, profile.size, profile.source, profile.layout) == (name, template, size, source, layout)
    mean, std = np.array(profile.mean), np.array(profile.std)
    assert np.allclose((0.0 - mean) / std, low, atol=1e-6) and np.allclose((1.0 - mean) / std, high, atol=1e-6), "input range"
    # the output that means black and the one that means white: output01 = scale · y + shift
    assert profile.output_scale * out_low + profile.output_shift == pytest.approx(0.0)
    assert profile.output_scale * out_high + profile.output_shift == pytest.approx(1.0)
    assert profile.needs_converter() == source.startswith("arcface_converted")
    assert profile.licence  # every family names its licence terms


class _Recorder(torch.nn.Module):
    """A stand-in network: keeps the picture it was fed and gives back a face of one value."""

    def __init__(self, input_names: list[str], output_names: list[str]) -> None:
        super().__init__()
        self.input_names, self.output_names = input_names, output_names
        self.fed: torch.Tensor | None = None
        self.face_value = 0.0

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        self.fed = tensors[0]
        return tuple(torch.full_like(tensors[0], self.face_value) for _ in self.output_names)


def test_each_family_is_fed_its_input_range_and_layout_and_its_output_read_back():
    """What the network of every family the CLI offers actually receives through the adapter, for
    a pure red crop (RGB 1, 0, 0): its own range for black and white in each channel, in its own
    layout and colour order; and what its darkest and brightest outputs become (black, white).
    With the crops it is cut at, the identity it is given and the licence it is shown with."""
    from realtime.byo.profiles import Binding
    from realtime.byo.swapper import OnnxSwapper

    red = torch.full((1, 3, 8, 8), -1.0)
    red[:, 0] = 1.0
    assert set(PROFILES) == set(FAMILIES)
    for name, profile in PROFILES.items():
        template, size, (low, high), (out_low, out_high), source, layout = FAMILIES[name]
        assert (profile.template, profile.size, profile.source, profile.layout) == (template, size, source, layout), name
        assert profile.licence, name
        if layout == "nhwc_bgr":
            network = _Recorder(["in_face:0", "morph_value:0"], ["face_mask", "celeb_face", "celeb_mask"])
            binding = Binding(profile, 8, "in_face:0", None, "morph_value:0", "celeb_face", "celeb_mask", None)
        else:
            network = _Recorder(["target", "source"], ["output"])
            binding = Binding(profile, 8, "target", "source", None, "output", None, None)
        adapter = OnnxSwapper(network, binding)
        for value, expected in ((out_low, -1.0), (out_high, 1.0)):
            network.face_value = value
            face = adapter(red, torch.zeros(1, 512))[0]
            assert face.shape == (1, 3, 8, 8) and torch.allclose(face, torch.full_like(face, expected), atol=1e-6), name
        fed = network.fed
        assert fed is not None
        if layout == "nhwc_bgr":  # [0,1], blue first, channels last
            assert fed.shape == (1, 8, 8, 3) and torch.allclose(fed[0, 0, 0], torch.tensor([0.0, 0.0, 1.0])), name
        else:
            assert fed.shape == (1, 3, 8, 8), name
            pixel = fed[0, :, 0, 0]
            assert torch.allclose(pixel, torch.tensor([high[0], low[1], low[2]], dtype=torch.float32), atol=1e-5), name


def test_a_file_given_as_dfm_that_is_not_one_names_its_inputs_and_what_a_dfm_takes(tmp_path, inswapper):
    """``--generator-profile dfm`` on an inswapper file, or a DFM export that lost an output: one
    refusal that says what the file has and what a DFM file takes, never a crash."""
    dfm_takes = "a DFM file takes in_face:0 [1,S,S,3] and gives face_mask, celeb_face, celeb_mask"
    _, info = load_onnx(inswapper)
    with pytest.raises(ModelError) as caught:
        detect_profile(info, "dfm")
    assert caught.value.problem == "inswapper_standin.onnx is not a DFM model (inputs ['target', 'source'], 1 outputs)" and caught.value.fix == dfm_takes
    _, dfm = load_onnx(make_dfm_standin(tmp_path / "person.onnx", size=64))
    two_outputs = replace(dfm, outputs=dfm.outputs[:2])
    with pytest.raises(ModelError) as caught:
        detect_profile(two_outputs, "dfm")
    assert caught.value.problem == "person.onnx is not a DFM model (inputs ['in_face:0', 'morph_value:0'], 2 outputs)" and caught.value.fix == dfm_takes
    with pytest.raises(ModelError, match="cannot tell which swapper person.onnx is"):
        detect_profile(two_outputs)
    oblong = replace(dfm, inputs=(replace(dfm.inputs[0], shape=(1, 64, 48, 3)), *dfm.inputs[1:]))
    with pytest.raises(ModelError, match=r"person\.onnx is not a DFM model"):
        detect_profile(oblong)


def test_a_profile_named_for_a_file_of_another_kind_says_what_that_profile_takes(tmp_path):
    """``--generator-profile`` mistyped, or naming a family the file is not: the refusal lists the
    profiles there are, or says what the file has and what that family takes."""
    _, dfm = load_onnx(make_dfm_standin(tmp_path / "person.onnx", size=64))
    with pytest.raises(ModelError) as caught:
        detect_profile(dfm, "hyperswap")
    assert caught.value.fix == f"use one of {', '.join(PROFILES)}"
    with pytest.raises(ModelError) as caught:
        detect_profile(dfm, "hyperswap_256")
    assert caught.value.problem == "person.onnx does not look like a hyperswap_256 model (inputs ['in_face:0', 'morph_value:0'])"
    assert caught.value.fix == "a hyperswap_256 file takes a [1,3,S,S] image and a [1,512] identity"


def test_an_inswapper_shaped_file_is_checked_against_the_profile_the_user_names(inswapper, tmp_path):
    """With ``--generator-profile``, the file must still take what that family takes, at its crop
    size and (inswapper) with its latent map; each refusal says what to do instead."""
    _, info = load_onnx(inswapper)
    for inputs in ((replace(info.inputs[0], shape=(1, 128, 128, 3)), info.inputs[1]), (*info.inputs, replace(info.inputs[1], name="extra", shape=(1,)))):
        with pytest.raises(ModelError, match=r"inswapper_standin\.onnx does not look like a inswapper_128 model"):
            detect_profile(replace(info, inputs=inputs), "inswapper_128")
    with pytest.raises(ModelError, match=r"takes 128 px crops, not hyperswap_256's 256: pass the matching --generator-profile$"):
        detect_profile(info, "hyperswap_256")
    no_emap = make_inswapper_standin(tmp_path / "noemap.onnx", base=4, blocks=1, emap=False)
    with pytest.raises(ModelError, match=r"no 512×512 latent map as its last initializer: use the original inswapper_128\.onnx \(an optimised copy loses it\)$"):
        detect_profile(load_onnx(no_emap)[1], "inswapper_128")


def test_an_inswapper_file_swaps_through_the_adapter_as_onnxruntime_runs_it(inswapper):
    """The crop goes to the file's image input and the identity to its vector input, in the
    family's ranges: the adapter's face is onnxruntime's, mapped back to the crop's range."""
    swapper, head, _, _ = load_swapper(inswapper)
    g = torch.Generator().manual_seed(3)
    crops = torch.rand(1, 3, 128, 128, generator=g) * 2 - 1
    identity = head(torch.randn(1, 512, generator=g))
    with torch.no_grad():
        got = swapper(crops, identity)[0]
    (face,) = _ort(inswapper, target=((crops + 1) / 2).numpy(), source=identity.detach().numpy())
    expected = torch.from_numpy(face).clamp(0, 1) * 2 - 1
    assert torch.allclose(got, expected, atol=1e-4)


def test_a_swapper_is_told_by_its_inputs_not_by_how_many_outputs_it_has(inswapper):
    """Recognised by what it takes: a 128-px crop and a 512-D identity with the latent map is
    inswapper even with extra outputs; the same with a 256-D identity is no family realtime knows
    (fed ArcFace's 512 values it would fail or swap garbage), so the user is asked for the profile."""
    _, info = load_onnx(inswapper)
    assert detect_profile(replace(info, outputs=info.outputs * 3)).profile.name == "inswapper_128"
    narrow = replace(info, inputs=(info.inputs[0], replace(info.inputs[1], shape=(1, 256))))
    with pytest.raises(ModelError, match=r"cannot tell which swapper inswapper_standin\.onnx is \(inputs target \[1, 3, 128, 128\], source \[1, 256\]\)"):
        detect_profile(narrow)


@pytest.mark.parametrize("crop_shape", [(1, 1, 128, 128), (1, 128, 128, 3), (1, 3, 128, 96)], ids=["one channel", "channels last", "not square"])
def test_a_swapper_whose_crop_is_not_rgb_channels_first_is_not_taken_for_inswapper(inswapper, crop_shape):
    """A grey, channels-last or oblong crop input beside a 512-D identity and a latent map: fed
    inswapper's square RGB channels-first crops it would fail or swap garbage, so the user is
    asked for the profile, with the profiles there are."""
    _, info = load_onnx(inswapper)
    other = replace(info, inputs=(replace(info.inputs[0], shape=crop_shape), info.inputs[1]))
    with pytest.raises(ModelError) as caught:
        detect_profile(other)
    assert caught.value.problem.startswith("cannot tell which swapper inswapper_standin.onnx is")
    assert caught.value.fix == f"pass --generator-profile with one of {', '.join(PROFILES)} if you know its family"


def test_a_third_party_swapper_is_loaded_with_one_notice_of_its_licence_and_of_consent(tmp_path, caplog):
    """The first load of a user's swapper file says which file and family it is, the licence its
    authors state, and that using it needs the right to and the consent of the people swapped;
    once per file, not at every load."""
    from realtime.byo.profiles import NON_COMMERCIAL_INSIGHTFACE

    path = make_inswapper_standin(tmp_path / "theirs.onnx", base=2, blocks=1, seed=38)  # a file no other test loads
    with caplog.at_level("WARNING", logger="realtime"):
        sha256 = load_swapper(path)[3]
        load_swapper(path)
    notices = [r.getMessage() for r in caplog.records if "You are responsible" in r.getMessage()]
    assert notices == [
        f"loaded theirs.onnx as inswapper_128 (sha256 {sha256[:12]}…): {NON_COMMERCIAL_INSIGHTFACE}. You are responsible for having "
        "the right to use it and the consent of anyone whose face you swap; realtime's licence does not cover this file."
    ]


def test_profiles_cover_every_family_the_issue_names():
    assert set(FAMILIES) <= set(PROFILES)


class _NoisyHalf:
    """A stand-in for an FP16 backend whose output drifts from FP32 by ``noise``."""

    def __init__(self, noise: float, name: str = "compiled") -> None:
        self.name, self.noise = name, noise

    def unavailable_reason(self) -> None:
        return None

    def load(self, spec, batch, engine_dir):
        from realtime.inference.spec import Runner

        def run(*inputs):
            out = spec.module.float()(*[t.float() for t in inputs])
            out = out if isinstance(out, tuple) else (out,)
            return (out[0] + self.noise * torch.sign(torch.randn_like(out[0])),) + out[1:]

        return Runner(self.name, run, device=torch.device("cpu"), dtype=torch.float16, batch=batch)


@pytest.mark.parametrize(("noise", "chosen"), [(1 / 255, "compiled"), (8 / 255, "cpu")])
def test_reduced_precision_is_used_only_when_it_matches_fp32_on_the_face(inswapper, noise, chosen, caplog):
    from realtime.inference.backend import CpuBackend
    from realtime.inference.select import PrecisionReference, select_runner

    spec = load_spec(GeneratorRequest(inswapper))
    reference = (torch.rand(1, 3, 128, 128) * 2 - 1, torch.nn.functional.normalize(torch.randn(1, 512), dim=1))
    selection = select_runner(spec, 1, Path("."), backends=[_NoisyHalf(noise), CpuBackend()], reference=PrecisionReference(reference))
    assert selection.runner.backend == chosen
    if chosen == "cpu":
        assert "differs from FP32 by" in selection.skipped[0][1] and "> 2/255" in selection.skipped[0][1]


def test_precision_fallbacks_put_bf16_then_fp32_before_the_cpu():
    from realtime.inference.select import precision_fallbacks

    assert precision_fallbacks(["compiled", "eager-cuda", "cpu"]) == ["compiled", "eager-cuda", "eager-cuda-bf16", "eager-cuda-fp32", "cpu"]


def test_run_and_swap_image_wear_an_onnx_swapper_from_the_command_line(aei_as_inswapper, tmp_path, capsys):
    from conftest import has_face_model

    from realtime.cli import main

    if not has_face_model():
        pytest.skip("no face_landmarker.task available offline")
    generator, encoder = aei_as_inswapper
    swap = ["--generator", str(generator), "--identity-encoder", str(encoder), "--source", "demo", "--backends", "cpu"]
    out = tmp_path / "out.mp4"
    assert main(["run", "--input", "demo", "--demo-frames", "12", "--output", str(out), "--quiet", *swap]) == 0
    assert out.stat().st_size > 0
    import cv2

    from realtime.testing import make_ground_truth_frame

    target = tmp_path / "target.png"
    cv2.imwrite(str(target), cv2.cvtColor(make_ground_truth_frame(60, sensor_noise=0), cv2.COLOR_RGB2BGR))
    assert main(["swap-image", "--target", str(target), "--output", str(tmp_path / "swapped.png"), *swap]) == 0
    assert "swapped 1 face(s)" in capsys.readouterr().out


def test_build_engines_and_bench_take_an_onnx_generator(tmp_path, capsys):
    from realtime.cli import main

    model = make_inswapper_standin(tmp_path / "s.onnx", base=2, blocks=1)
    engines = tmp_path / "engines"
    assert main(["build-engines", "--generator", str(model), "--batch", "1", "--kinds", "aot", "--engines-dir", str(engines)]) == 0
    assert main(["bench", "generator", "--generator", str(model), "--backends", "aot", "--batches", "1", "--engines-dir", str(engines)]) == 0
    table = capsys.readouterr().out
    assert "onnx-inswapper_128" in table and "\naot " in table and "skipped" not in table


def test_a_bad_generator_file_is_one_line_and_a_nonzero_exit(tmp_path, capsys):
    from realtime.cli import main

    junk = tmp_path / "model.onnx"
    junk.write_bytes(b"\x08\x07garbage" * 10)
    code = main(["run", "--input", "demo", "--output", "null", "--generator", str(junk), "--source", "demo", "--identity-encoder", str(junk)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "model.onnx" in err[0] and ("not a readable ONNX file" in err[0] or "holds no ONNX graph" in err[0])


def test_doctor_lists_user_models_with_profile_sha256_and_licence(tmp_path, inswapper, capsys):
    from realtime.doctor import check_user_models

    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "inswapper_128.onnx").write_bytes(inswapper.read_bytes())
    make_arcface_standin(folder / "w600k_r50.onnx")
    (folder / "broken.onnx").write_bytes(b"nope")
    checks = {Path(c.detail.split(":")[0]).name: c for c in check_user_models([folder])}
    assert checks["inswapper_128.onnx"].status == "ok" and "inswapper_128 (128 px, insightface_128 crops)" in checks["inswapper_128.onnx"].detail
    assert "non-commercial" in checks["inswapper_128.onnx"].detail and "sha256" in checks["inswapper_128.onnx"].detail
    assert "identity encoder (112×112)" in checks["w600k_r50.onnx"].detail
    for name in ("inswapper_128.onnx", "w600k_r50.onnx"):  # our converter against onnxruntime on the user's file
        gap = float(checks[name].detail.split("max |Δ| vs onnxruntime ")[1])
        assert gap < 1e-3, checks[name].detail
    assert checks["broken.onnx"].status == "warn"


@pytest.mark.gpu
def test_an_onnx_swapper_compiles_in_fp16_within_the_precision_policy(inswapper, tmp_path):
    from realtime.inference.select import PrecisionReference, select_runner

    spec = load_spec(GeneratorRequest(inswapper))
    reference = PrecisionReference((torch.rand(1, 3, 128, 128) * 2 - 1, torch.nn.functional.normalize(torch.randn(1, 512), dim=1)))
    selection = select_runner(spec, 2, tmp_path, ("compiled", "eager-cuda", "cpu"), reference=reference)
    assert selection.runner.device.type == "cuda"
    inputs = spec.example_inputs(2)
    first = selection.runner(*inputs)[0].float().cpu()
    again = selection.runner(*inputs)[0].float().cpu()  # a replayed CUDA graph gives the same answer
    assert torch.equal(first, again)


def test_a_smoke_trained_per_target_model_behind_dfm_conventions_equals_the_native_path(tmp_path):
    """A per-target model trained here for a few steps, exported as a DFM file: through the
    adapter (NHWC BGR in, the celeb face and mask out) the swap stage gives the native output."""
    from realtime.stages.swap import SwapStage
    from realtime.testing_onnx import export_target_as_dfm
    from realtime.train.options import TargetOptions
    from realtime.train.target import TargetTrainer

    rng = np.random.default_rng(0)
    import cv2

    faces = np.stack([cv2.GaussianBlur(rng.integers(0, 256, (112, 112, 3), dtype=np.uint8), (0, 0), 5) for _ in range(8)])
    options = TargetOptions(steps=4, batch=2, width=4, bottleneck=16, log_every=2, sample_every=1000, save_every=1000)
    TargetTrainer(faces, faces[::-1].copy(), tmp_path, options, "cpu").run()
    native_path = tmp_path / "target.safetensors"
    dfm = export_target_as_dfm(native_path, tmp_path / "person.onnx")
    common = {"backends": ("cpu",), "crop_size": 128, "template": "arcface", "max_faces": 2}
    crops = (rng.random((2, 128, 128, 3)) * 255).astype(np.uint8)
    results = []
    for generator in (native_path, dfm):
        config = build_config(overrides={**common, "generator": str(generator)})
        stage = SwapStage(config.swap, config.track, config.detect)
        stage.setup()
        images, masks = stage._generate(crops, 2)
        results.append((images.numpy().astype(np.int16), None if masks is None else masks.numpy()))
        stage.teardown()
    assert stage.spec is not None and stage.spec.architecture == "onnx-dfm"
    assert np.abs(results[0][0] - results[1][0]).max() <= 1
    assert results[1][1] is not None and np.abs(results[0][1] - results[1][1]).max() < 1e-4


def _converter(path: Path, seed: int = 3) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(seed).standard_normal((512, 512)).astype(np.float32) / 20
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["input", "w"], ["output"], transB=1)], "converter",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 512])], [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 512])],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(("profile", "normalised"), [("ghost_256", False), ("simswap_256", True)])
def test_converter_families_make_their_identity_through_the_users_converter(tmp_path, profile, normalised):
    model = make_inswapper_standin(tmp_path / "m.onnx", base=2, blocks=1, emap=False, size=256)
    converter = _converter(tmp_path / "crossface.onnx")
    spec = load_spec(GeneratorRequest(model, profile=profile, converter=converter))
    assert spec.crop_size == 256 and spec.template == "arcface_112_v1" and spec.identity_head is not None
    raw = torch.randn(1, 512) * 5
    expected = _ort(converter, input=raw.numpy())[0]
    expected_t = torch.from_numpy(expected)
    if normalised:
        expected_t = torch.nn.functional.normalize(expected_t, dim=1)
    assert torch.allclose(spec.identity_head(raw), expected_t, atol=1e-4)
    with pytest.raises(ModelError, match="is not an identity converter"):
        load_spec(GeneratorRequest(model, profile=profile, converter=make_arcface_standin(tmp_path / "arc.onnx")))


def test_eval_swap_measures_an_onnx_swapper_with_an_arcface_onnx_encoder(aei_as_inswapper, tmp_path, capsys):
    import json

    from conftest import has_face_model
    from test_eval_swap import _people_dataset

    from realtime.cli import main

    if not has_face_model():
        pytest.skip("no face_landmarker.task available offline")
    generator, encoder = aei_as_inswapper
    dataset = _people_dataset(tmp_path)
    report = tmp_path / "swap.json"
    code = main(["eval-swap", "--faces", str(dataset), "--generator", str(generator), "--identity-encoder", str(encoder), "--identities", "4", "--no-judge", "--json", str(report)])
    assert code == 0, capsys.readouterr().err
    result = json.loads(report.read_text())
    assert result["trials"] == 4 and 0.0 <= result["ours"]["retrieval_source_rate"] <= 1.0 and report.with_suffix(".png").is_file()


def test_the_onnxruntime_backend_runs_the_users_file_behind_the_same_adapter(inswapper, tmp_path):
    from realtime.inference.backend import CpuBackend, OnnxRuntimeBackend
    from realtime.inference.select import select_runner

    for boost in (1, 2):
        spec = load_spec(GeneratorRequest(inswapper, pixel_boost=boost))
        inputs = spec.example_inputs(3)  # a batch of 3 through a file declared for one face
        ours = select_runner(spec, 3, tmp_path, backends=[CpuBackend()]).runner(*inputs)[0]
        selection = select_runner(spec, 3, tmp_path, backends=[OnnxRuntimeBackend()])
        assert selection.runner.backend == "onnxruntime" and "CPUExecutionProvider" in selection.runner.detail
        assert torch.allclose(selection.runner(*inputs)[0], ours, atol=1e-4)
    from realtime.inference.spec import spec_from_checkpoint

    native = spec_from_checkpoint(MODELS / "aei-net-v2.safetensors")
    refused = select_runner(native, 1, tmp_path, backends=[OnnxRuntimeBackend(), CpuBackend()])
    assert refused.runner.backend == "cpu" and "only users' ONNX generators" in refused.skipped[0][1]


def test_a_spec_knows_whether_its_generator_makes_a_mask(tmp_path, inswapper):
    from realtime.inference.spec import spec_from_checkpoint

    assert not load_spec(GeneratorRequest(inswapper)).makes_mask
    assert load_spec(GeneratorRequest(make_dfm_standin(tmp_path / "p.onnx"))).makes_mask
    assert not spec_from_checkpoint(MODELS / "aei-net-v2.safetensors").makes_mask
