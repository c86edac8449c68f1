"""The build-engines command's options, kept apart from the builders so that parsing (``--help``,
a usage error) never imports torch."""

from __future__ import annotations

import argparse
from pathlib import Path

KINDS = ("tensorrt", "aot", "compiled")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, required=True, help="an aei_net or target_autoencoder checkpoint (.safetensors)")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 2, 4], help="faces per frame to build for (default: 1 2 4)")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, help="engine kinds (default: tensorrt if installed, else aot + compiled on CUDA, aot on CPU)")
    parser.add_argument("--engines-dir", type=str, default="auto", help="where engines and manifest.json go (default 'auto': ~/.cache/realtime/engines, or under $REALTIME_CACHE)")
    parser.add_argument("--target-identity", type=int, default=0, help="per-target models: which decoder (default: 0)")
