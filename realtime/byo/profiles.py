"""What each known family of users' ONNX face swappers expects, written from the families' public
descriptions (shared/BYO-MODELS.md): crop template and size, input layout, colour order and range,
how the source identity is made, the output's range, and the licence its authors state.

A file is matched by its sha256 when it is a known release, else by its input/output signature;
a file that matches no profile is refused with a hint, never guessed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from realtime.choices import TemplateName
from realtime.errors import ModelError
from realtime.models.onnx.graph import OnnxInfo

SourceKind = Literal["arcface_emap", "arcface_norm", "arcface_converted", "arcface_converted_raw", "baked"]
Layout = Literal["nchw_rgb", "nhwc_bgr"]
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
EMBEDDING = 512  # ArcFace's embedding, what every identity-driven family takes
DFM_MORPH = 0.75  # DeepFaceLab's default morph factor, fed when a DFM file has the input

NON_COMMERCIAL_INSIGHTFACE = (
    "InsightFace releases this model for non-commercial research use only and asks others to contact "
    "contact@insightface.ai for a licence"
)


@dataclass(frozen=True)
class SwapProfile:
    name: str
    template: TemplateName
    size: int  # the model's crop size (0: read from the file)
    layout: Layout
    mean: tuple[float, float, float]  # input = (rgb01 - mean) / std
    std: tuple[float, float, float]
    output_scale: float  # output01 = scale · y + shift
    output_shift: float
    source: SourceKind
    licence: str

    def needs_converter(self) -> bool:
        return self.source in ("arcface_converted", "arcface_converted_raw")


def _profile(name: str, template: TemplateName, size: int, mean: float | tuple[float, float, float], std: float | tuple[float, float, float], out: tuple[float, float], source: SourceKind, licence: str, layout: Layout = "nchw_rgb") -> SwapProfile:
    as3 = lambda v: v if isinstance(v, tuple) else (v, v, v)  # noqa: E731
    return SwapProfile(name, template, size, layout, as3(mean), as3(std), out[0], out[1], source, licence)


PROFILES: dict[str, SwapProfile] = {
    p.name: p
    for p in (
        _profile("inswapper_128", "insightface_128", 128, 0.0, 1.0, (1.0, 0.0), "arcface_emap", NON_COMMERCIAL_INSIGHTFACE),
        _profile("reswapper_128", "insightface_128", 128, 0.0, 1.0, (1.0, 0.0), "arcface_emap", "ReSwapper's authors state its licence in its repository: check it"),
        _profile("reswapper_256", "insightface_128", 256, 0.0, 1.0, (1.0, 0.0), "arcface_emap", "ReSwapper's authors state its licence in its repository: check it"),
        _profile("hyperswap_256", "insightface_128", 256, 0.5, 0.5, (0.5, 0.5), "arcface_norm", "FaceFusion lists hyperswap under ResearchRAIL (research use)"),
        _profile("simswap_256", "arcface_112_v1", 256, IMAGENET_MEAN, IMAGENET_STD, (1.0, 0.0), "arcface_converted", "SimSwap's authors release it for non-commercial use only"),
        _profile("simswap_512", "arcface_112_v1", 512, 0.0, 1.0, (1.0, 0.0), "arcface_converted", "SimSwap (unofficial 512) is for non-commercial use only"),
        _profile("ghost_256", "arcface_112_v1", 256, 0.5, 0.5, (0.5, 0.5), "arcface_converted_raw", "GHOST is released under Apache-2.0"),
        _profile("dfm", "ffhq", 0, 0.0, 1.0, (1.0, 0.0), "baked", "a DeepFaceLive model: its licence is whatever its maker gave; check it", layout="nhwc_bgr"),
    )
}

# Releases whose hash several unrelated public scripts agree on.
KNOWN_SHA256 = {
    "e4a3f08c753cb72d04e10aa0f7dbe3deebbf39567d4ead6dce08e98aa49e16af": "inswapper_128",
}
ARCFACE_SHA256 = {"4c06341c33c2ca1f86781dab0e829f88ad5b64be9fba56e56bc9ebdefc619e43": ("buffalo_l w600k_r50", "InsightFace releases buffalo_l for non-commercial research use only")}


@dataclass(frozen=True)
class Binding:
    """How a file's inputs and outputs map onto the swap: which input takes the crop, which the
    identity (or the morph factor), which output is the face and which its mask."""

    profile: SwapProfile
    size: int
    target_input: str
    source_input: str | None
    morph_input: str | None
    face_output: str
    mask_output: str | None
    emap: str | None  # the initializer holding inswapper's latent map


def _square_image(shape: tuple[int | None, ...], layout: Layout) -> int | None:
    if len(shape) != 4:
        return None
    if layout == "nchw_rgb" and shape[1] == 3 and shape[2] and shape[2] == shape[3]:
        return shape[2]
    if layout == "nhwc_bgr" and shape[3] == 3 and shape[1] and shape[1] == shape[2]:
        return shape[1]
    return None


def _emap_of(info: OnnxInfo) -> str | None:
    last = info.last_initializer
    if last and last in info.arrays and info.arrays[last].shape == (EMBEDDING, EMBEDDING):
        return last
    return None


def detect_profile(info: OnnxInfo, override: str | None = None) -> Binding:
    """The profile of a swapper file (``override``: a profile name the user gave)."""
    if override is not None and override not in PROFILES:
        raise ModelError(f"unknown generator profile {override!r}", f"use one of {', '.join(PROFILES)}")
    name = override or KNOWN_SHA256.get(info.sha256)
    names = [i.name for i in info.inputs]
    if name is None:
        name = _by_signature(info)
    profile = PROFILES[name]
    if profile.layout == "nhwc_bgr":
        return _dfm_binding(info, profile)
    images = [i for i in info.inputs if _square_image(i.shape, "nchw_rgb")]
    vectors = [i for i in info.inputs if len(i.shape) == 2 and i.shape[1] == EMBEDDING]
    if len(images) != 1 or len(vectors) != 1 or len(info.inputs) != 2:
        raise ModelError(f"{info.path.name} does not look like a {profile.name} model (inputs {names})", f"a {profile.name} file takes a [1,3,S,S] image and a [1,{EMBEDDING}] identity")
    size = _square_image(images[0].shape, "nchw_rgb") or profile.size
    if profile.size and size != profile.size:
        raise ModelError(f"{info.path.name} takes {size} px crops, not {profile.name}'s {profile.size}", "pass the matching --generator-profile")
    emap = _emap_of(info)
    if profile.source == "arcface_emap" and emap is None and profile.name == "inswapper_128":
        raise ModelError(f"{info.path.name} has no 512×512 latent map as its last initializer", "use the original inswapper_128.onnx (an optimised copy loses it)")
    output = info.outputs[0]
    return Binding(profile, size, images[0].name, vectors[0].name, None, output.name, None, emap)


def _dfm_binding(info: OnnxInfo, profile: SwapProfile) -> Binding:
    face = next((i for i in info.inputs if _square_image(i.shape, "nhwc_bgr")), None)
    morph = next((i.name for i in info.inputs if i.name.startswith("morph_value")), None)
    if face is None or len(info.outputs) != 3:
        raise ModelError(f"{info.path.name} is not a DFM model (inputs {[i.name for i in info.inputs]}, {len(info.outputs)} outputs)", "a DFM file takes in_face:0 [1,S,S,3] and gives face_mask, celeb_face, celeb_mask")
    _face_mask, celeb_face, celeb_mask = (o.name for o in info.outputs)
    return Binding(profile, _square_image(face.shape, "nhwc_bgr") or 0, face.name, None, morph, celeb_face, celeb_mask, None)


def _by_signature(info: OnnxInfo) -> str:
    names = {i.name.split(":")[0] for i in info.inputs}
    if "in_face" in names and len(info.outputs) == 3:
        return "dfm"
    images = [i for i in info.inputs if _square_image(i.shape, "nchw_rgb")]
    vectors = [i for i in info.inputs if len(i.shape) == 2 and i.shape[1] == EMBEDDING]
    if len(info.inputs) == 2 and len(images) == 1 and len(vectors) == 1:
        size = _square_image(images[0].shape, "nchw_rgb")
        if size == 128 and _emap_of(info) is not None:
            return "inswapper_128"
    hint = f"pass --generator-profile with one of {', '.join(PROFILES)} if you know its family"
    shapes = ", ".join(f"{i.name} {list(i.shape)}" for i in info.inputs)
    raise ModelError(f"cannot tell which swapper {info.path.name} is (inputs {shapes})", hint)


def licence_notice(name: str, sha256: str, licence: str) -> str:
    return (
        f"loaded {name} (sha256 {sha256[:12]}…): {licence}. You are responsible for having the right to use it "
        "and the consent of anyone whose face you swap; realtime's licence does not cover this file."
    )
