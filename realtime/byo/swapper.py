"""A user's ONNX swapper as a generator of ours: the converted graph behind the pipeline's own
contract (crops NCHW RGB in [-1, 1], one identity vector per face; out: RGB in [-1, 1], and a mask
for DFM files), so every backend we have compiles it like our own models. The identity the file
wants (inswapper's emap, a converter model, plain normalisation) is made by ``IdentityHead`` from
the ArcFace embedding of the source face."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from realtime.byo.profiles import DFM_MORPH, EMBEDDING, Binding, detect_profile, licence_notice
from realtime.errors import ModelError
from realtime.models.onnx.graph import OnnxModule, load_onnx

log = logging.getLogger("realtime")
_NOTICED: set[str] = set()  # one licence notice per file and process


class OnnxSwapper(nn.Module):
    def __init__(self, graph: OnnxModule, binding: Binding) -> None:  # or an OrtNetwork: the same interface
        super().__init__()
        self.network = graph
        profile = binding.profile
        self.nhwc_bgr = profile.layout == "nhwc_bgr"
        self.register_buffer("mean", torch.tensor(profile.mean).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(profile.std).reshape(1, 3, 1, 1), persistent=False)
        self.output_scale, self.output_shift = profile.output_scale, profile.output_shift
        self.order = graph.input_names
        self.target, self.source, self.morph = binding.target_input, binding.source_input, binding.morph_input
        outputs = graph.output_names
        self.face_index = outputs.index(binding.face_output)
        self.mask_index = outputs.index(binding.mask_output) if binding.mask_output else None

    def _buffer(self, name: str) -> torch.Tensor:
        return self.get_buffer(name)

    def forward(self, crops: torch.Tensor, identity: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        rgb01 = (crops + 1) * 0.5
        if self.nhwc_bgr:
            image = rgb01.flip(1).permute(0, 2, 3, 1)
        else:
            image = (rgb01 - self._buffer("mean").to(crops.dtype)) / self._buffer("std").to(crops.dtype)
        feeds: dict[str, torch.Tensor] = {self.target: image}
        if self.source is not None:
            assert identity is not None, "this model takes an identity"
            feeds[self.source] = identity
        if self.morph is not None:
            feeds[self.morph] = torch.full((1,), DFM_MORPH, dtype=crops.dtype, device=crops.device)
        out = self.network(*[feeds[name] for name in self.order])
        outputs = out if isinstance(out, tuple) else (out,)
        face = outputs[self.face_index]
        if self.nhwc_bgr:
            face = face.permute(0, 3, 1, 2).flip(1)
        face01 = face * self.output_scale + self.output_shift
        result: tuple[torch.Tensor, ...] = (face01.clamp(0, 1) * 2 - 1,)
        if self.mask_index is not None:
            mask = outputs[self.mask_index]
            mask = mask.permute(0, 3, 1, 2) if self.nhwc_bgr else mask
            result += (mask[:, :1].clamp(0, 1),)
        return result


class IdentityHead(nn.Module):
    """From an ArcFace embedding (raw, as the encoder gives it) to the vector the swapper takes:
    normalised (hyperswap); normalised then through inswapper's latent map and normalised again
    (inswapper, reswapper); through a converter model, normalised or not (SimSwap, GHOST)."""

    def __init__(self, kind: str, emap: torch.Tensor | None = None, converter: nn.Module | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.converter = converter
        self.register_buffer("emap", emap if emap is not None else torch.zeros(0), persistent=False)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        if self.kind == "arcface_emap":
            emap: torch.Tensor = self.get_buffer("emap")
            return F.normalize(F.normalize(embedding, dim=-1) @ emap, dim=-1)
        if self.kind == "arcface_norm":
            return F.normalize(embedding, dim=-1)
        assert self.converter is not None
        converted = self.converter(embedding)
        return F.normalize(converted, dim=-1) if self.kind == "arcface_converted" else converted


def load_swapper(path: Path, *, profile: str | None = None, converter: Path | None = None) -> tuple[OnnxSwapper, IdentityHead | None, Binding, str]:
    """The swapper module, the identity head it needs (None for DFM: its identity is baked in),
    its binding, and the file's sha256."""
    graph, info = load_onnx(path, what="generator")
    binding = detect_profile(info, profile)
    head = None
    if binding.profile.source != "baked":
        emap = None
        if binding.profile.source == "arcface_emap":
            emap_source = info if binding.emap else (load_onnx(converter, what="latent map file")[1] if converter else None)
            name = binding.emap if binding.emap else (emap_source.last_initializer if emap_source else None)
            if emap_source is None or name is None or name not in emap_source.arrays:
                raise ModelError(f"{path.name} ({binding.profile.name}) needs inswapper's 512×512 latent map", "pass --identity-converter inswapper_128.onnx (it holds the map)")
            emap = torch.from_numpy(emap_source.arrays[name].astype("float32"))
        converter_module = None
        if binding.profile.needs_converter():
            if converter is None:
                raise ModelError(f"{path.name} ({binding.profile.name}) needs its identity converter", "pass --identity-converter with the family's crossface_* / arcface_converter_* ONNX file")
            converter_module, converter_info = load_onnx(converter, what="identity converter")
            if len(converter_info.inputs) != 1 or converter_info.inputs[0].shape[-1:] != (EMBEDDING,):
                raise ModelError(f"{converter.name} is not an identity converter (input {list(converter_info.inputs[0].shape) if converter_info.inputs else []})", f"pass the converter that maps a [1,{EMBEDDING}] ArcFace embedding")
        head = IdentityHead(binding.profile.source, emap, converter_module).eval()
    if info.sha256 not in _NOTICED:
        _NOTICED.add(info.sha256)
        log.warning(licence_notice(f"{path.name} as {binding.profile.name}", info.sha256, binding.profile.licence))
    return OnnxSwapper(graph, binding).eval(), head, binding, info.sha256


class OnnxIdentityEncoder(nn.Module):
    """A user's ArcFace ONNX (e.g. buffalo_l's w600k_r50): RGB crops in [-1, 1] → its raw
    embedding (ArcFace's own input range, so our identity crop feeds it as insightface does)."""

    def __init__(self, graph: OnnxModule, input_size: tuple[int, int]) -> None:
        super().__init__()
        self.network = graph
        self.input_size = input_size

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        out = self.network(crops)
        return out[0] if isinstance(out, tuple) else out


def load_identity_encoder_onnx(path: Path) -> OnnxIdentityEncoder:
    from realtime.byo.profiles import ARCFACE_SHA256

    graph, info = load_onnx(path, what="identity encoder")
    shape = info.inputs[0].shape if len(info.inputs) == 1 else ()
    if len(shape) != 4 or shape[1] != 3 or not shape[2] or not shape[3]:
        raise ModelError(f"{path.name} is not an identity encoder (inputs {[list(i.shape) for i in info.inputs]})", "pass an ArcFace ONNX that takes [N,3,112,112] crops, e.g. w600k_r50.onnx")
    known = ARCFACE_SHA256.get(info.sha256)
    if known and info.sha256 not in _NOTICED:
        _NOTICED.add(info.sha256)
        log.warning(licence_notice(known[0], info.sha256, known[1]))
    return OnnxIdentityEncoder(graph, (int(shape[2]), int(shape[3]))).eval()
