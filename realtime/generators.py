"""Any generator file → a backend-ready ``GeneratorSpec``: our checkpoints (safetensors) and
users' own ONNX swappers (through ``byo``; DeepFaceLive's .dfm files are ONNX), told apart by
their content, optionally pixel-boosted. The swap stage, build-engines and the benchmarks all load
generators here, so a user's file goes everywhere ours goes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast

from realtime.choices import TemplateName
from realtime.config import Config, SwapConfig, TrackConfig
from realtime.errors import ConfigError, ModelError
from realtime.inference.spec import GeneratorSpec, spec_from_checkpoint
from realtime.models.formats import detect_model_format

PIXEL_BOOSTS = (1, 2, 4)


@dataclass(frozen=True)
class GeneratorRequest:
    path: Path
    target_identity: int = 0
    profile: str | None = None  # users' ONNX files: the family, when the file cannot tell
    converter: Path | None = None  # users' ONNX files: the identity converter (or the file with inswapper's emap)
    pixel_boost: int = 1

    @classmethod
    def from_swap(cls, swap: SwapConfig, path: str | None = None) -> GeneratorRequest:
        """The request for ``--generator`` (or ``path``: one of ``--also-generator``)."""
        chosen = path or swap.generator
        if not chosen:
            raise ConfigError("no generator given", "pass --generator FILE (.safetensors or .onnx)")
        return cls(Path(chosen), swap.target_identity, swap.generator_profile, Path(swap.identity_converter) if swap.identity_converter else None, swap.pixel_boost)

    @property
    def is_onnx(self) -> bool:
        """Whether the file holds an ONNX model (read from its content: a .dfm is one);
        ModelError when it is missing or neither an ONNX model nor a checkpoint."""
        return detect_model_format(self.path, "generator") == "onnx"


def load_spec(request: GeneratorRequest) -> GeneratorSpec:
    if request.pixel_boost not in PIXEL_BOOSTS:
        raise ConfigError(f"--pixel-boost {request.pixel_boost} is not supported", "use 1, 2 or 4")
    spec = _spec_from_onnx(request) if request.is_onnx else spec_from_checkpoint(request.path, target_identity=request.target_identity)
    if request.pixel_boost == 1:
        return spec
    from realtime.inference.pixel_boost import PixelBoost

    k = request.pixel_boost
    keyed = hashlib.sha256(f"{spec.checkpoint_sha256}:pixel-boost-{k}".encode()).hexdigest()
    on_onnxruntime = spec.onnxruntime_module
    boosted_onnxruntime = (lambda: PixelBoost(on_onnxruntime(), k).eval()) if on_onnxruntime is not None else None
    return replace(
        spec, architecture=f"{spec.architecture}-pb{k}", module=PixelBoost(spec.module, k).eval(), crop_size=spec.crop_size * k,
        checkpoint_sha256=keyed, onnxruntime_module=boosted_onnxruntime,
    )


def _spec_from_onnx(request: GeneratorRequest) -> GeneratorSpec:
    from realtime.byo.swapper import load_swapper

    swapper, head, binding, sha = load_swapper(request.path, profile=request.profile, converter=request.converter)
    id_dim = None if head is None else 512
    keyed = hashlib.sha256(f"{sha}:{binding.profile.name}:{request.converter or ''}".encode()).hexdigest()
    from realtime.byo.onnxruntime import onnxruntime_swapper

    path = request.path
    return GeneratorSpec(
        f"onnx-{binding.profile.name}", swapper, binding.size, id_dim, keyed, binding.profile.template, head,
        precision_checked=True, makes_mask=binding.mask_output is not None, onnxruntime_module=lambda: onnxruntime_swapper(path, binding),
    )


def takes_identity(request: GeneratorRequest) -> bool:
    """Whether the generator wears a source face (AEI-Net, identity-driven ONNX swappers) rather
    than one person of its own (per-target models, DFM files)."""
    if request.is_onnx:
        from realtime.byo.profiles import detect_profile
        from realtime.models.onnx.graph import inspect_onnx

        return detect_profile(inspect_onnx(request.path, what="generator"), request.profile).profile.source != "baked"
    from realtime.models.checkpoint import read_checkpoint_info

    return read_checkpoint_info(request.path).architecture != "target_autoencoder"


def generator_geometry(request: GeneratorRequest) -> tuple[int, TemplateName]:
    """The crop size and template a generator file wants, without building it. ModelError, naming
    the file and the size it declares, when faces cannot be aligned at that size."""
    if request.is_onnx:
        from realtime.byo.profiles import detect_profile
        from realtime.models.onnx.graph import inspect_onnx

        info = inspect_onnx(request.path, what="generator")
        binding = detect_profile(info, request.profile)
        declared = next((f"{i.name} {[d if d is not None else '?' for d in i.shape]}" for i in info.inputs if i.name == binding.target_input), binding.target_input)
        size, template, what = binding.size, binding.profile.template, f"a {binding.profile.name} model whose input {declared} takes"
    else:
        from realtime.models.checkpoint import read_checkpoint_info

        checkpoint = read_checkpoint_info(request.path)
        size, template, what = checkpoint.crop_size or 256, cast("TemplateName", checkpoint.template or "arcface"), f"a {checkpoint.architecture} checkpoint for"
    _check_crop_size(request, size, what)
    return size * request.pixel_boost, template


def resolve_crop_size(config: Config) -> Config:
    """Without ``--crop-size`` and ``--template`` the crops are made as the generator wants them,
    which its file knows (read here, not when a Config is built: a Config does no I/O)."""
    if (config.track.crop_size is not None and config.track.template is not None) or not config.swap.generator:
        return config
    size, template = generator_geometry(GeneratorRequest.from_swap(config.swap))
    track = replace(config.track, crop_size=config.track.crop_size or size, template=config.track.template or template)
    return replace(config, track=track)


def _alignable(px: int) -> bool:
    try:
        TrackConfig(crop_size=px)
    except ConfigError:
        return False
    return True


def _check_crop_size(request: GeneratorRequest, size: int, what: str) -> None:
    """The track stage's rule for crop sizes (``TrackConfig``), said about the file rather than
    about a --crop-size flag the user never gave."""
    boosted = size * request.pixel_boost
    if _alignable(boosted):
        return
    boost = f" ({boosted} px with --pixel-boost {request.pixel_boost})" if request.pixel_boost > 1 else ""
    fitting = [k for k in PIXEL_BOOSTS if _alignable(size * k)]
    fix = f"run it with --pixel-boost {fitting[0]} ({size * fitting[0]} px crops)" if fitting else "use a model made for 128, 256 or 512 px crops"
    raise ModelError(f"generator {request.path} is {what} {size} px crops{boost}, a size realtime cannot align faces at", fix)
