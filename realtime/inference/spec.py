"""What a generator is to the backends: the module, its inputs, and a runner bound to one backend,
device, precision and batch size; ``spec_from_checkpoint`` reads one from a checkpoint;
``to_generator``/``from_generator``, the pixels' way in and out of every generator. Kept apart
from the backends so that the manifest and the backends both import it and not each other."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch import nn

from realtime.choices import TemplateName
from realtime.errors import ModelError


@dataclass(frozen=True)
class GeneratorSpec:
    """A generator ready for a backend: the FP32 CPU module and how to build its inputs.

    AEI-Net takes (crops, identity); a per-target swapper takes (crops,). Outputs are a tuple:
    (rgb,) or (rgb, mask), RGB in [-1, 1]."""

    architecture: str
    module: nn.Module
    crop_size: int
    id_dim: int | None
    checkpoint_sha256: str
    template: TemplateName = "arcface"  # the crop framing the generator was trained on
    identity_head: nn.Module | None = None  # the source embedding → the identity input (users' ONNX models)
    precision_checked: bool = False  # FP16 only after a comparison with FP32 on the user's source face
    makes_mask: bool = False  # the generator gives a mask with its face (per-target models, DFM files)
    onnxruntime_module: Callable[[], nn.Module] | None = None  # users' ONNX files: the same generator run by onnxruntime
    takes_landmarks: bool = False  # its second input is each face's 478 landmarks in its crop, not an identity (a reenactment refiner)

    def example_inputs(self, batch: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0) -> tuple[torch.Tensor, ...]:
        generator = torch.Generator().manual_seed(seed)
        crops = torch.rand(batch, 3, self.crop_size, self.crop_size, generator=generator) * 2 - 1
        inputs = [crops]
        if self.takes_landmarks:  # the module's own source layout, jittered: a face the spline can fit
            layout = cast("torch.Tensor", self.module.source_points).float()
            inputs.append(layout.expand(batch, -1, -1) + torch.randn(batch, *layout.shape[1:], generator=generator) * 0.5)
        elif self.id_dim is not None:
            inputs.append(torch.nn.functional.normalize(torch.randn(batch, self.id_dim, generator=generator), dim=1))
        return tuple(t.to(device=device, dtype=dtype) for t in inputs)


def to_generator(pixels: torch.Tensor | np.ndarray) -> torch.Tensor:
    """RGB pixels 0–255 → a generator's input: (N, 3, S, S) float in [-1, 1], on their device.
    ``pixels``: (N, S, S, 3) uint8 images (a NumPy array is wrapped, not copied), or the (N, 3, S, S)
    float samples ``warp_crop_torch`` cuts."""
    images = torch.from_numpy(pixels) if isinstance(pixels, np.ndarray) else pixels
    if images.dtype == torch.uint8:
        images = images.permute(0, 3, 1, 2).float()
    return images / 127.5 - 1.0


def from_generator(output: torch.Tensor) -> torch.Tensor:
    """A generator's RGB output, (N, 3, S, S) in [-1, 1] (any float type) → (N, S, S, 3) uint8
    images, on the same device: ``to_generator`` reversed (a round trip returns the same bytes)."""
    return ((output.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


class Runner:
    """A callable bound to one backend, device, precision and batch size."""

    def __init__(self, backend: str, fn: Callable[..., object], *, device: torch.device, dtype: torch.dtype, batch: int, detail: str = "") -> None:
        self.backend = backend
        self.fn = fn
        self.device = device
        self.dtype = dtype
        self.batch = batch
        self.detail = detail

    @torch.inference_mode()
    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.fn(*[t.to(device=self.device, dtype=self.dtype) for t in inputs])
        return cast("tuple[torch.Tensor, ...]", tuple(out) if isinstance(out, (tuple, list)) else (out,))

    def describe(self) -> dict[str, object]:
        return {"backend": self.backend, "device": str(self.device), "dtype": str(self.dtype).replace("torch.", ""), "batch": self.batch, "detail": self.detail}


def spec_from_checkpoint(path: Path, *, target_identity: int = 0) -> GeneratorSpec:
    """The generator a checkpoint holds, as a backend-ready spec."""
    from realtime.models.checkpoint import load_checkpoint
    from realtime.models.target_autoencoder import TargetSwapper
    from realtime.models.weights import sha256_file

    model, info = load_checkpoint(path)
    sha = sha256_file(path)
    template = cast("TemplateName", info.template or "arcface")
    if info.architecture == "aei_net":
        return GeneratorSpec("aei_net", model, int(info.hyperparameters.get("crop_size", 256)), int(info.hyperparameters.get("id_dim", 128)), sha, template)
    if info.architecture == "target_autoencoder":
        swapper = TargetSwapper(model, target_identity).eval()  # type: ignore[arg-type]
        keyed = hashlib.sha256(f"{sha}:{target_identity}".encode()).hexdigest()
        return GeneratorSpec(f"target_autoencoder-{target_identity}", swapper, int(info.hyperparameters.get("crop_size", 128)), None, keyed, template, makes_mask=True)
    if info.architecture == "reenact_refiner":
        from realtime.models.reenact_refiner import ReenactRefiner, ReenactSwapper

        wearer = ReenactSwapper(cast("ReenactRefiner", model)).eval()
        return GeneratorSpec("reenact_refiner", wearer, int(info.hyperparameters.get("crop_size", 256)), None, sha, template, takes_landmarks=True)
    raise ModelError(f"checkpoint {path} holds a {info.architecture}, not a generator", "pass an aei_net, target_autoencoder or reenact_refiner checkpoint")
