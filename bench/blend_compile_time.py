#!/usr/bin/env python3
"""How long the fused blend maths take to compile, cold and from the kernels build-engines saves.

    python3 bench/blend_compile_time.py ENGINES_DIR [CROP]

Run it twice on a GPU machine: the first run (no saved kernels) compiles cold and saves them, the
second (a fresh process) loads them first. Prints seconds and Inductor's cache counters.
"""

import sys
import time
from pathlib import Path

import torch
from torch._dynamo.utils import counters

from realtime.stages.blend.kernels import (
    blend_cache_path,
    build_blend_cache,
    fused_shapes,
    load_blend_cache,
)
from realtime.stages.blend.region import compile_crop_core


def main(engine_dir: Path, crop: int) -> None:
    engine_dir.mkdir(parents=True, exist_ok=True)
    loaded = load_blend_cache(engine_dir, crop)
    t0 = time.perf_counter()
    for shape in fused_shapes(crop, False):
        compile_crop_core(shape, "cuda")
    seconds = time.perf_counter() - t0
    print(f"fused blend, {crop} px, {len(fused_shapes(crop, False))} shapes: compiled in {seconds:.1f} s ({'saved kernels ' + loaded if loaded else 'cold'})")
    print("inductor counters:", {k: dict(v) for k, v in counters.items() if k in ("inductor", "aot_autograd", "dynamo_cache")})
    print(torch._dynamo.utils.compile_times())
    if not loaded:
        print("saved:", build_blend_cache(crop, False, engine_dir), blend_cache_path(engine_dir, crop).stat().st_size, "bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 256)
