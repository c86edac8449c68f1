"""What each known family of users' occluders and face parsers expects (shared/BYO-MODELS-2.md §2):
input and output names, layout, colour order, range, size, what the output means, and the licence
its source states. As for swappers, the calling code of the peers defines each interface.

A file is matched by its sha256 when it is a pinned release, else by its input/output signature
(names and shapes); a file whose shapes fit several families but whose names fit none is refused
with the profile flag to pass, never guessed."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal

from realtime.byo.profiles import IMAGENET_MEAN, IMAGENET_STD
from realtime.choices import ParserRegion, region_names
from realtime.errors import ModelError
from realtime.models.onnx.graph import OnnxInfo, TensorInfo

MaskKind = Literal["occluder", "parser"]
MaskOutput = Literal["probability", "logit", "class_logits"]
FLAG = {"occluder": "--occluder-profile", "parser": "--parser-profile"}
FILE_FLAG = {"occluder": "--occluder", "parser": "--parser"}
A_KIND = {"occluder": "an occluder", "parser": "a face parser"}

# BiSeNet's classes in CelebAMask-HQ order (§2.3): the ids are the same in yakhyo's labels,
# FaceFusion's region set and VisoMaster's comment.
PARSER_CLASSES = (
    "background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r",
    "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat",
)
# --parser-regions names → class ids: FaceFusion's names, and one name for each pair. Whether
# 'left' is the person's or the image's left is not stated anywhere (§2.3): the pairs are safer.
REGION_IDS: dict[ParserRegion, tuple[int, ...]] = {
    "skin": (1,), "left-eyebrow": (2,), "right-eyebrow": (3,), "brows": (2, 3), "left-eye": (4,), "right-eye": (5,),
    "eyes": (4, 5), "glasses": (6,), "nose": (10,), "mouth": (11,), "upper-lip": (12,), "lower-lip": (13,), "lips": (12, 13),
}

GPL_XSEG = "DeepFaceLab's XSeg, GPL-3.0 (FaceFusion names DeepFaceLab as its vendor)"


@dataclass(frozen=True)
class MaskProfile:
    name: str
    kind: MaskKind
    size: int  # the square crop the file takes
    channels_last: bool  # NHWC (TensorFlow exports) rather than NCHW
    colour: Literal["rgb", "bgr"]
    mean: tuple[float, float, float]  # input = (colour01 - mean) / std
    std: tuple[float, float, float]
    output: MaskOutput  # probability: 1 = face; logit: > 0 = face; class_logits: argmax over classes
    input_name: str  # the names its callers bind, the signature's first half
    output_name: str | None  # None: the peers read output 0 whatever its name
    classes: int  # channels of the output (1 for an occluder's mask)
    licence: str
    called_by: str  # whose code defines the interface


PROFILES: dict[str, MaskProfile] = {
    p.name: p
    for p in (
        MaskProfile("xseg_facefusion", "occluder", 256, True, "bgr", (0.0,) * 3, (1.0,) * 3, "probability", "input", None, 1, GPL_XSEG, "FaceFusion's face_masker (xseg_1/2/3.onnx, dfl_xseg.onnx)"),
        MaskProfile("xseg_visomaster", "occluder", 256, False, "rgb", (0.0,) * 3, (1.0,) * 3, "probability", "in_face:0", "out_mask:0", 1, f"{GPL_XSEG}; VisoMaster states no licence of its own for XSeg_model.onnx", "VisoMaster's face_masks (XSeg_model.onnx)"),
        MaskProfile("occluder_visomaster", "occluder", 256, False, "rgb", (0.0,) * 3, (1.0,) * 3, "logit", "img", "output", 1, "VisoMaster states neither the origin nor the licence of occluder.onnx: check it before use", "VisoMaster's face_masks (occluder.onnx)"),
        MaskProfile("bisenet", "parser", 512, False, "rgb", IMAGENET_MEAN, IMAGENET_STD, "class_logits", "input", "output", len(PARSER_CLASSES), "yakhyo/face-parsing is MIT; its weights were trained on CelebAMask-HQ, which is for non-commercial research only", "FaceFusion's face_parser (bisenet_resnet_18/34.onnx), VisoMaster (faceparser_resnet34.onnx)"),
    )
}

# BYO-MODELS-2.md §1.3: VisoMaster's pinned releases
KNOWN_SHA256 = {
    "4381395dcbec1eef469fa71cfb381f00ac8aadc3e5decb4c29c36b6eb1f38ad9": "xseg_visomaster",
    "79f5c2edf10b83458693d122dd51488b210fb80c059c5d56347a047710d44a78": "occluder_visomaster",
    "5b805bba7b5660ab7070b5a381dcf75e5b3e04199f1e9387232a77a00095102e": "bisenet",
}


@dataclass(frozen=True)
class MaskBinding:
    """Which input takes the crop and which output is the mask, for one file."""

    profile: MaskProfile
    input_name: str
    output_index: int


def _fits(shape: tuple[int | None, ...], wanted: tuple[int, ...]) -> bool:
    """A declared shape that can take ``wanted``: the same rank, every fixed dim equal (open dims
    fit anything; the batch is always free: a file declared for one face runs any batch)."""
    return len(shape) == len(wanted) and all(d is None or d == w or i == 0 for i, (d, w) in enumerate(zip(shape, wanted, strict=True)))


def _input_shape(profile: MaskProfile) -> tuple[int, ...]:
    s = profile.size
    return (1, s, s, 3) if profile.channels_last else (1, 3, s, s)


def _output_shape(profile: MaskProfile) -> tuple[int, ...]:
    s, c = profile.size, profile.classes
    return (1, s, s, c) if profile.channels_last else (1, c, s, s)


def _shapes_fit(info: OnnxInfo, profile: MaskProfile) -> bool:
    return len(info.inputs) == 1 and bool(info.outputs) and _fits(info.inputs[0].shape, _input_shape(profile)) and _fits(info.outputs[0].shape, _output_shape(profile))


def _names_fit(info: OnnxInfo, profile: MaskProfile) -> bool:
    return info.inputs[0].name == profile.input_name and profile.output_name in (None, info.outputs[0].name)


def signature_matches(info: OnnxInfo) -> list[MaskProfile]:
    """Every profile whose names and shapes the file has (several only if the table is wrong)."""
    return [p for p in PROFILES.values() if _shapes_fit(info, p) and _names_fit(info, p)]


def shape_matches(info: OnnxInfo) -> list[MaskProfile]:
    """Every profile whose shapes the file has, whatever its names."""
    return [p for p in PROFILES.values() if _shapes_fit(info, p)]


def known_profile(info: OnnxInfo) -> MaskProfile | None:
    """The file's family when it is told without a flag (pinned sha256, else one signature)."""
    known = KNOWN_SHA256.get(info.sha256)
    matches = [PROFILES[known]] if known else signature_matches(info)
    return matches[0] if len(matches) == 1 and _shapes_fit(info, matches[0]) else None


def summary(profile: MaskProfile) -> str:
    """One phrase for ``doctor``: what the family is, what it takes and gives, and its flag."""
    layout = f"{'NHWC' if profile.channels_last else 'NCHW'} {profile.colour.upper()}"
    takes = f"{profile.size} px {layout} {'ImageNet-normalised' if profile.mean != (0.0, 0.0, 0.0) else '[0,1]'}"
    gives = {"probability": "a face probability", "logit": "a face logit", "class_logits": f"{profile.classes}-class logits"}[profile.output]
    return f"{profile.kind} {profile.name} ({takes} → {gives}; {FILE_FLAG[profile.kind]})"


def _describe(tensors: tuple[TensorInfo, ...]) -> str:
    return ", ".join(f"{t.name} {[d if d is not None else '?' for d in t.shape]}" for t in tensors)


def detect_mask_profile(info: OnnxInfo, kind: MaskKind, override: str | None = None) -> MaskBinding:
    """The profile of an occluder or parser file: ``override`` (a profile name the user gave),
    else a pinned sha256, else the signature. ModelError with the fix otherwise: a file of the
    other kind is named as such, an ambiguous one asks for the profile flag."""
    of_kind = [p for p in PROFILES.values() if p.kind == kind]
    if override is not None:
        profile = PROFILES.get(override)
        if profile is None or profile.kind != kind:
            raise ModelError(f"unknown {kind} profile {override!r}", f"use one of {', '.join(p.name for p in of_kind)}")
        if not _shapes_fit(info, profile):
            raise ModelError(f"{info.path.name} does not take what a {profile.name} file takes (inputs {_describe(info.inputs)}; outputs {_describe(info.outputs)})", f"a {profile.name} file takes {list(_input_shape(profile))} and gives {list(_output_shape(profile))} first")
        return MaskBinding(profile, info.inputs[0].name, 0)
    found = known_profile(info)
    if found is not None and found.kind == kind:
        return MaskBinding(found, info.inputs[0].name, 0)
    if found is not None:
        other = found
        raise ModelError(f"{info.path.name} is {A_KIND[other.kind]} ({other.name}), not {A_KIND[kind]}", f"pass it to {FILE_FLAG[other.kind]}")
    by_shape = [p for p in of_kind if _shapes_fit(info, p)]
    if by_shape:
        raise ModelError(
            f"cannot tell which {kind} {info.path.name} is (inputs {_describe(info.inputs)}; outputs {_describe(info.outputs)}: the shapes of {', '.join(p.name for p in by_shape)}, the names of none)",
            f"pass {FLAG[kind]} with one of {', '.join(p.name for p in by_shape)} if you know its family",
        )
    wanted = "; ".join(f"{p.name}: {p.input_name} {list(_input_shape(p))} → {list(_output_shape(p))}" for p in of_kind)
    raise ModelError(f"{info.path.name} is not {A_KIND[kind]} realtime knows (inputs {_describe(info.inputs)}; outputs {_describe(info.outputs)})", f"pass a file of one of these families ({wanted})")


def region_ids(regions: tuple[str, ...]) -> tuple[int, ...]:
    """The class ids of ``--parser-regions``, sorted (``SwapConfig`` has refused unknown names)."""
    return tuple(sorted({i for name in region_names(regions) for i in REGION_IDS[typing.cast("ParserRegion", name)]}))
