"""Checkpoints: safetensors tensors plus JSON metadata, in one file; never a pickle.

The metadata (stored in the safetensors header under ``realtime``) names the architecture and its
hyperparameters, the crop size and template, the embedding size, how the weights were trained,
and the sha256 of the tensor data, which ``load_checkpoint`` verifies. Every failure is a
``ModelError`` that names the file and what is wrong with it.

Weights may be stored as int8 with one FP16 scale per output channel (``weight_storage="int8"``,
format 2: halves a file, so a wider model still travels and ships under 10 MB); they are
dequantised at load, so every backend sees ordinary float weights.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from realtime.errors import ModelError
from realtime.models import aei_net, identity, reenact_refiner, target_autoencoder
from realtime.models.aei_net import AEINet
from realtime.models.formats import sniff_model_format
from realtime.models.hyperparameters import Rule, hyperparameter_problem
from realtime.models.identity import IdentityEncoder
from realtime.models.target_autoencoder import TargetAutoencoder

FORMAT_VERSION = 2  # 2: may hold int8 weights (``int8_weights``); files without them are still written as 1
SCALE_SUFFIX = ".int8_scale"
INT8_MIN_ELEMENTS = 1024  # smaller tensors (biases, norms, tiny kernels) stay FP16: they cost nothing

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "aei_net": AEINet,
    "identity_encoder": IdentityEncoder,
    "target_autoencoder": TargetAutoencoder,
    "reenact_refiner": reenact_refiner.ReenactRefiner,
}
HYPERPARAMETER_RULES: dict[str, dict[str, Rule]] = {
    "aei_net": aei_net.HYPERPARAMETERS,
    "identity_encoder": identity.HYPERPARAMETERS,
    "target_autoencoder": target_autoencoder.HYPERPARAMETERS,
    "reenact_refiner": reenact_refiner.HYPERPARAMETERS,
}


@dataclass(frozen=True)
class CheckpointInfo:
    architecture: str
    hyperparameters: dict[str, Any]
    crop_size: int | None = None
    template: str | None = None
    embed_dim: int | None = None
    training: dict[str, Any] = field(default_factory=dict)
    tensors_sha256: str = ""
    format_version: int = FORMAT_VERSION
    int8_weights: list[str] = field(default_factory=list)  # stored as int8 beside a per-channel scale

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """A content hash over names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        _digest_tensor(digest, name, tensors[name])
    return digest.hexdigest()


def _digest_tensor(digest: Any, name: str, tensor: torch.Tensor) -> None:
    tensor = tensor.detach().contiguous().cpu()
    digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
    # reshape(-1) first: a 0-d tensor (BatchNorm's counter) cannot be viewed as bytes
    digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 with one scale per output channel (dim 0): (int8 values, FP16 scales)."""
    flat = weight.detach().float().reshape(weight.shape[0], -1)
    scale = (flat.abs().amax(dim=1) / 127.0).clamp(min=1e-12).half()
    values = (flat / scale.float()[:, None]).round().clamp(-127, 127).to(torch.int8)
    return values.reshape(weight.shape), scale


def dequantize_int8(values: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return values.float() * scale.float().reshape(-1, *([1] * (values.dim() - 1)))


def save_checkpoint(
    path: Path,
    model: nn.Module,
    *,
    architecture: str,
    hyperparameters: dict[str, Any],
    training: dict[str, Any] | None = None,
    template: str | None = None,
    dtype: torch.dtype | None = None,
    weight_storage: str = "float",
) -> CheckpointInfo:
    """Write ``model``'s weights (optionally cast, e.g. to float16 for shipping; with
    ``weight_storage="int8"`` the large weight tensors as per-channel int8) atomically."""
    from safetensors.torch import save_file

    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}")
    if weight_storage not in ("float", "int8"):
        raise ValueError(f"weight_storage must be 'float' or 'int8', not {weight_storage!r}")
    tensors = {}
    int8_weights = []
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        if weight_storage == "int8" and tensor.is_floating_point() and tensor.dim() >= 2 and tensor.numel() >= INT8_MIN_ELEMENTS:
            tensors[name], tensors[name + SCALE_SUFFIX] = quantize_int8(tensor)
            int8_weights.append(name)
            continue
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        tensors[name] = tensor
    info = CheckpointInfo(
        architecture=architecture,
        hyperparameters=dict(hyperparameters),
        crop_size=hyperparameters.get("crop_size"),
        template=template,
        embed_dim=hyperparameters.get("id_dim", hyperparameters.get("embed_dim")),
        training=dict(training or {}),
        tensors_sha256=tensors_sha256(tensors),
        format_version=2 if int8_weights else 1,
        int8_weights=int8_weights,
    )
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp), metadata={"realtime": info.to_json()})
    os.replace(tmp, path)
    return info


SUPPORTED_CROP_SIZES = (128, 256)


def _metadata_problem(info: CheckpointInfo) -> str | None:
    """What is wrong with metadata that parsed as JSON but not as what realtime writes, if anything."""
    def whole(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    if not whole(info.format_version) or info.format_version < 1:
        return f"format_version {info.format_version!r} is not a version number"
    if not isinstance(info.architecture, str):
        return f"architecture {info.architecture!r} is not a name"
    if not isinstance(info.hyperparameters, dict) or not isinstance(info.training, dict):
        return "hyperparameters and training must be tables"
    if info.crop_size is not None and (not whole(info.crop_size) or info.crop_size not in SUPPORTED_CROP_SIZES):
        return f"crop_size {info.crop_size!r} is not one of {', '.join(map(str, SUPPORTED_CROP_SIZES))}"
    for name in ("template", "tensors_sha256"):
        if getattr(info, name) is not None and not isinstance(getattr(info, name), str):
            return f"{name} {getattr(info, name)!r} is not text"
    if info.embed_dim is not None and (not whole(info.embed_dim) or info.embed_dim < 1):
        return f"embed_dim {info.embed_dim!r} is not a size"
    if not isinstance(info.int8_weights, list) or not all(isinstance(n, str) for n in info.int8_weights):
        return "int8_weights must be a list of tensor names"
    return None


def read_checkpoint_info(path: Path) -> CheckpointInfo:
    """The metadata alone (cheap: only the header is read)."""
    from safetensors import safe_open

    if not path.is_file():
        raise ModelError(f"checkpoint {path} does not exist", "check the path, or train/build one first")
    if sniff_model_format(path) == "onnx":
        raise ModelError(f"{path} is an ONNX model (a DeepFaceLive .dfm is one), not a realtime checkpoint", "pass a .safetensors checkpoint written by realtime here (ONNX models go to --generator or --identity-encoder)")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except Exception as exc:  # noqa: BLE001 - safetensors raises several kinds for bad headers
        raise ModelError(f"checkpoint {path} is not a safetensors file ({str(exc).splitlines()[0][:100]})", "it is corrupt or of another format: re-download or re-train it") from None
    if "realtime" not in metadata:
        raise ModelError(f"checkpoint {path} has no realtime metadata", "only checkpoints written by realtime can be loaded")
    try:
        raw = json.loads(metadata["realtime"])
        if not isinstance(raw, dict):
            raise TypeError("not a table")
        info = CheckpointInfo(**raw)
    except (json.JSONDecodeError, TypeError) as exc:
        raise ModelError(f"checkpoint {path} has unreadable metadata ({exc})", "re-export it with this version of realtime") from None
    problem = _metadata_problem(info)
    if problem:
        raise ModelError(f"checkpoint {path} has bad metadata ({problem})", "it was damaged or not written by realtime: re-download or re-train it")
    if info.format_version > FORMAT_VERSION:
        raise ModelError(f"checkpoint {path} is format {info.format_version}, newer than this realtime understands", "upgrade realtime")
    if info.architecture not in ARCHITECTURES:
        raise ModelError(f"checkpoint {path} is for an unknown architecture {info.architecture!r}", f"expected one of {', '.join(ARCHITECTURES)}")
    problem = hyperparameter_problem(HYPERPARAMETER_RULES[info.architecture], info.hyperparameters) or _agreement_problem(info)
    if problem:
        raise ModelError(f"checkpoint {path} has bad metadata ({problem})", "it was damaged or not written by realtime: re-download or re-train it")
    return info


def _agreement_problem(info: CheckpointInfo) -> str | None:
    """Where the metadata's summary (crop size, embedding size) disagrees with its hyperparameters."""
    hyper = info.hyperparameters
    if "crop_size" in hyper and info.crop_size != hyper["crop_size"]:
        return f"crop_size {info.crop_size} but hyperparameters.crop_size {hyper['crop_size']}"
    declared = hyper.get("id_dim", hyper.get("embed_dim"))
    if declared is not None and info.embed_dim != declared:
        return f"embed_dim {info.embed_dim} but the hyperparameters say {declared}"
    return None


def _stored_shapes(path: Path, info: CheckpointInfo) -> dict[str, tuple[int, ...]]:
    """Each stored tensor's shape, from the header alone (int8 weights without their scales)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            shapes = {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}  # noqa: SIM118 - a safetensors handle, not a dict
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"checkpoint {path} is truncated or damaged ({str(exc).splitlines()[0][:100]})", "re-download or re-train it") from None
    return {name: shape for name, shape in shapes.items() if not (name.endswith(SCALE_SUFFIX) and name[: -len(SCALE_SUFFIX)] in info.int8_weights)}


def _module_shapes(path: Path, info: CheckpointInfo) -> dict[str, tuple[int, ...]]:
    """The shape of every tensor the module the metadata describes would hold, from a build on
    the meta device: sizes only, nothing allocated, whatever the numbers say."""
    try:
        with torch.device("meta"):
            skeleton = ARCHITECTURES[info.architecture](**info.hyperparameters)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"checkpoint {path} has hyperparameters this version cannot build ({exc})", "re-export it with this version of realtime") from None
    return {name: tuple(tensor.shape) for name, tensor in skeleton.state_dict().items()}


def _check_shapes(path: Path, info: CheckpointInfo, stored: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]]) -> None:
    """The file's tensors are exactly the module's, name for name and shape for shape."""
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    if missing or unexpected:
        raise ModelError(
            f"checkpoint {path} does not match the {info.architecture} architecture "
            f"({len(missing)} missing, {len(unexpected)} unexpected tensors, e.g. {(missing or unexpected)[0]})",
            "it was written by another version: re-export or re-train it",
        )
    for name, shape in stored.items():
        if shape != expected[name]:
            raise ModelError(f"checkpoint {path}: tensor {name} has shape {shape}, the model expects {expected[name]}", "the hyperparameters and weights disagree: re-export it")


def verify_checkpoint(path: Path) -> CheckpointInfo:
    """What ``load_checkpoint`` checks, without building the module: the metadata, the module's
    shapes against the stored tensors', and the checksum, read one tensor at a time (memory: the
    largest tensor, never the whole file). For ``doctor``."""
    from safetensors import safe_open

    info = read_checkpoint_info(path)
    _check_shapes(path, info, _stored_shapes(path, info), _module_shapes(path, info))
    digest = hashlib.sha256()
    try:
        with safe_open(str(path), framework="pt") as handle:
            for name in sorted(handle.keys()):  # noqa: SIM118 - a safetensors handle, not a dict
                _digest_tensor(digest, name, handle.get_tensor(name))
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"checkpoint {path} is truncated or damaged ({str(exc).splitlines()[0][:100]})", "re-download or re-train it") from None
    if digest.hexdigest() != info.tensors_sha256:
        raise ModelError(f"checkpoint {path} failed its checksum", "the weights were changed or damaged: re-download or re-train it")
    return info


def load_checkpoint(path: Path, *, expect: str | None = None, dtype: torch.dtype = torch.float32) -> tuple[nn.Module, CheckpointInfo]:
    """Build the model the metadata describes and load the verified weights into it (eval mode).
    The hyperparameters are checked against their ranges (``read_checkpoint_info``) and the module
    they describe against the stored tensors' shapes before the module is built, so what is built
    is never larger than what the file holds."""
    from safetensors.torch import load_file

    info = read_checkpoint_info(path)
    if expect is not None and info.architecture != expect:
        raise ModelError(f"checkpoint {path} holds a {info.architecture}, not a {expect}", f"pass a {expect} checkpoint")
    _check_shapes(path, info, _stored_shapes(path, info), _module_shapes(path, info))
    try:
        tensors = load_file(str(path))
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"checkpoint {path} is truncated or damaged ({str(exc).splitlines()[0][:100]})", "re-download or re-train it") from None
    if tensors_sha256(tensors) != info.tensors_sha256:
        raise ModelError(f"checkpoint {path} failed its checksum", "the weights were changed or damaged: re-download or re-train it")
    for name in info.int8_weights:
        values, scale = tensors.get(name), tensors.pop(name + SCALE_SUFFIX, None)
        if values is None or scale is None or values.dtype != torch.int8 or scale.numel() != values.shape[0]:
            raise ModelError(f"checkpoint {path}: int8 tensor {name} or its scale is missing or malformed", "re-export it with this version of realtime")
        tensors[name] = dequantize_int8(values, scale)
    model = ARCHITECTURES[info.architecture](**info.hyperparameters)
    expected = model.state_dict()
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()})
    return model.to(dtype).eval(), info
