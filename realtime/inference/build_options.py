"""What build-engines takes, kept apart from the builders so that parsing (``--help``, a usage
error) never imports torch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from realtime.errors import ConfigError
from realtime.options import option, required

EngineKind = Literal["tensorrt", "aot", "compiled"]
KINDS: tuple[EngineKind, ...] = ("tensorrt", "aot", "compiled")
MAX_BATCH = 64


@dataclass(frozen=True)
class BuildOptions:
    checkpoint: Path = required("the generator: our checkpoint (.safetensors) or your own ONNX swapper", flag="--generator")
    batch: tuple[int, ...] = option((1, 2, 4), "faces per frame to build for")
    kinds: tuple[EngineKind, ...] | None = option(None, "engine kinds (default: tensorrt if installed, else aot + compiled on CUDA, aot on CPU)")
    engines_dir: str = option("auto", "where engines and manifest.json go ('auto': ~/.cache/realtime/engines, or under $REALTIME_CACHE)")
    target_identity: int = option(0, "per-target models: which decoder")
    generator_profile: str | None = option(None, "users' ONNX swappers: the family, when the file cannot tell (as for run)", metavar="NAME")
    identity_converter: Path | None = option(None, "users' ONNX swappers: the identity converter (as for run)", metavar="PATH")
    pixel_boost: int = option(1, "build for the pixel-boosted generator (as for run: 1, 2 or 4)", metavar="K")

    def __post_init__(self) -> None:
        if not self.batch or any(b < 1 or b > MAX_BATCH for b in self.batch):
            raise ConfigError(f"--batch values must be between 1 and {MAX_BATCH}", "e.g. --batch 1 2 4")
