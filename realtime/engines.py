"""``realtime build-engines`` (and ``build_engines.py``): everything compiled ahead for one
checkpoint, in one folder. With 'compiled', the blend's fused kernels come first (Inductor's saved
artifacts hold everything compiled so far in the process: built first, their file holds only
them), then the generator's engines. The generator runtime (``inference/``) knows nothing of the
blend: this module hands it the blend's job."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from realtime.generators import GeneratorRequest, load_spec
from realtime.inference.build import Prelude, build_engines, default_kinds
from realtime.inference.build_options import BuildOptions
from realtime.inference.engine_dir import resolve_engines_dir


def build_all(request: GeneratorRequest, batches: Sequence[int], engine_dir: Path, kinds: Sequence[str] | None = None) -> list[str]:
    """The blend's fused kernels (with 'compiled'), then every generator engine asked for."""
    kinds = list(kinds or default_kinds())
    spec = load_spec(request)
    prelude: Prelude = ()
    if "compiled" in kinds:
        from realtime.stages.blend.kernels import build_blend_cache

        crop_size, generator_mask = spec.crop_size, spec.makes_mask
        prelude = ((f"the fused blend kernels ({crop_size} px crops)", lambda: build_blend_cache(crop_size, generator_mask, engine_dir)),)
    return build_engines(spec, batches, engine_dir, kinds, prelude=prelude)


def build_from_options(options: BuildOptions) -> int:
    engines_dir = resolve_engines_dir(options.engines_dir)
    request = GeneratorRequest(options.checkpoint, options.target_identity, options.generator_profile, options.identity_converter, options.pixel_boost)
    written = build_all(request, options.batch, engines_dir, options.kinds)
    print(f"built {len(written)} engine(s) in {engines_dir}")
    return 0
