"""The fused blend maths' compiled kernels, kept in ``engines/`` like the generator's.

Fusing the blend's crop-space maths (``region.fused_crop_core``) saves ~0.35 ms per 256-px
face on a datacentre GPU, but compiling them in the pipeline's start costs 40+ s. ``build-engines`` (kind
``compiled``) compiles them once for the usual settings and saves Inductor's cache artifacts
here; a pipeline that finds the file loads it and fuses at the cost of a warm compile.

The file name carries what the kernels depend on: the crop size, the GPU architecture, torch's
version and a fingerprint of the blend's source code — a file from other code is never loaded
by accident (Inductor keys its own entries by graph as well, so a stale file could only miss).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import logging
import os
from collections.abc import Callable
from pathlib import Path

import torch

from realtime.errors import ModelError
from realtime.inference.engine_dir import check_engines_dir
from realtime.inference.manifest import device_tag
from realtime.stages.blend import region
from realtime.stages.blend.region import RegionShape, compile_crop_core, crop_space
from realtime.vision.landmarks import LANDMARK_COUNT
from realtime.vision.masks_torch import mask_holes

log = logging.getLogger("realtime")
# (keep_mouth, keep_eyes) built ahead: the default, and the mouth kept (a streamer's usual live toggle)
BUILT_HOLES = ((False, False), (True, False))


def fused_code_modules() -> list[str]:
    """Every ``realtime`` module the fused blend's code imports, directly or not (read from their
    ``import`` statements, so a constant imported by name counts as much as a function)."""
    found: set[str] = set()
    pending = [region.__name__]
    while pending:
        name = pending.pop()
        if name in found:
            continue
        found.add(name)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        for node in ast.walk(ast.parse(Path(spec.origin).read_bytes())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("realtime") and node.level == 0:
                pending.append(node.module)
            elif isinstance(node, ast.Import):
                pending += [alias.name for alias in node.names if alias.name.startswith("realtime")]
    return sorted(found)


def code_fingerprint(read: Callable[[Path], bytes] = Path.read_bytes) -> str:
    """12 hex digits of the fused blend's source, every module it imports included: the kernels are
    only valid for this code (a change to a constant two imports away made stale kernels load)."""
    digest = hashlib.sha256()
    for name in fused_code_modules():
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin is not None:
            digest.update(name.encode() + b"\0" + read(Path(spec.origin)))
    return digest.hexdigest()[:12]


def blend_cache_path(engine_dir: Path, crop_size: int) -> Path:
    tag = device_tag("cuda").replace(":", "-")
    return engine_dir / f"blend-fused-{crop_size}px-{tag}-torch{torch.__version__}-{code_fingerprint()}.inductor-cache.bin"


def fused_shapes(crop_size: int, generator_mask: bool) -> list[RegionShape]:
    """The crop-space shapes compiled ahead: colour matching on, each of ``BUILT_HOLES``."""
    return [crop_space(RegionShape(0, 0, crop_size, LANDMARK_COUNT, mask_holes(mouth, eyes), generator_mask, True)) for mouth, eyes in BUILT_HOLES]


def build_blend_cache(crop_size: int, generator_mask: bool, engine_dir: Path) -> str:
    """Compile the fused blend for the usual settings on this GPU and save the kernels; returns the file name."""
    if not torch.cuda.is_available():
        raise ModelError("the fused blend is compiled for a CUDA GPU", "run build-engines on the GPU machine")
    for shape in fused_shapes(crop_size, generator_mask):
        compile_crop_core(shape, "cuda")
    torch.cuda.synchronize()
    artifacts = torch.compiler.save_cache_artifacts()
    if artifacts is None:
        raise ModelError("torch.compile produced no cache artifacts for the blend", "the blend still fuses; it compiles at start")
    path = blend_cache_path(engine_dir, crop_size)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(artifacts[0])
    os.replace(partial, path)  # never a half-written cache under the real name
    return path.name


def load_blend_cache(engine_dir: Path, crop_size: int) -> str | None:
    """Pre-load the saved kernels for this GPU, torch and code; None when there are none (or they
    cannot be read: the blend then runs unfused unless fusing was asked for)."""
    path = blend_cache_path(engine_dir, crop_size)
    if not path.is_file():
        others = sorted(engine_dir.glob(f"blend-fused-{crop_size}px-*.inductor-cache.bin"))
        if others:  # built before a change of GPU, torch or the blend's code: say so, once, at start
            log.info("blend: the fused kernels in %s (%s) are for another GPU, torch or blend code; blending unfused: "
                     "rebuild them with realtime build-engines --kinds compiled", engine_dir, others[-1].name)
        return None
    check_engines_dir(engine_dir)
    log.info("blend: loading saved fused kernels %s", path)
    try:
        loaded = torch.compiler.load_cache_artifacts(path.read_bytes())  # None: corrupt (torch logs why)
    except Exception as exc:  # noqa: BLE001 - a cache is an optimisation
        loaded, why = None, type(exc).__name__
    else:
        why = "corrupt"
    if loaded is None:
        log.warning("blend: saved fused kernels %s unusable (%s); rebuild them with realtime build-engines", path.name, why)
        return None
    return path.name
