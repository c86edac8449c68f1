"""``realtime build-engines`` (and ``build_engines.py``): everything compiled ahead for one
checkpoint, in one folder. With 'compiled', the blend's fused kernels come first (Inductor's saved
artifacts hold everything compiled so far in the process: built first, their file holds only
them), then the generator's engines. The generator runtime (``inference/``) knows nothing of the
blend: this module hands it the blend's job."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from realtime.errors import ModelError
from realtime.inference.build import Prelude, build_engines, default_kinds
from realtime.inference.build_options import add_arguments
from realtime.inference.engine_dir import resolve_engines_dir
from realtime.inference.spec import spec_from_checkpoint


def build_all(checkpoint: Path, batches: Sequence[int], engine_dir: Path, kinds: Sequence[str] | None = None, *, target_identity: int = 0) -> list[str]:
    """The blend's fused kernels (with 'compiled'), then every generator engine asked for."""
    kinds = list(kinds or default_kinds())
    prelude: Prelude = ()
    if "compiled" in kinds:
        from realtime.stages.blend.kernels import build_blend_cache

        spec = spec_from_checkpoint(checkpoint, target_identity=target_identity)
        crop_size, generator_mask = spec.crop_size, spec.architecture != "aei_net"
        prelude = ((f"the fused blend kernels ({crop_size} px crops)", lambda: build_blend_cache(crop_size, generator_mask, engine_dir)),)
    return build_engines(checkpoint, batches, engine_dir, kinds, target_identity=target_identity, prelude=prelude)


def run_from_args(args: argparse.Namespace) -> int:
    if any(b < 1 or b > 64 for b in args.batch):
        raise ModelError("--batch values must be between 1 and 64", "e.g. --batch 1 2 4")
    engines_dir = resolve_engines_dir(args.engines_dir)
    written = build_all(args.checkpoint, args.batch, engines_dir, args.kinds, target_identity=args.target_identity)
    print(f"built {len(written)} engine(s) in {engines_dir}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="build_engines.py", description="Build FP16 generator engines (default folder: ~/.cache/realtime/engines).")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_from_args(args)
    except ModelError as exc:
        print(f"build_engines: error: {exc}", file=sys.stderr)
        return 1
