"""Engine builds: a checkpoint and the batch sizes the live path uses → engines in ``engines/``.

On a CUDA machine with torch-tensorrt: TensorRT FP16 engines (dynamo front end, from the same
``torch.export`` graph the tests check). Otherwise: AOTInductor packages (FP16 on CUDA, FP32 on
CPU), each loaded once in a child process before it is listed — a package that cannot be loaded
must never reach the live path — and, on CUDA, torch.compile cache artifacts as well.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from realtime.errors import ModelError
from realtime.inference.backend import cuda_available
from realtime.inference.blend_cache import build_blend_cache
from realtime.inference.build_options import KINDS, add_arguments
from realtime.inference.manifest import EngineKey, compile_cache_path, record_engine
from realtime.inference.spec import GeneratorSpec, spec_from_checkpoint

log = logging.getLogger("realtime")


def default_kinds() -> list[str]:
    if cuda_available():
        try:
            import torch_tensorrt  # noqa: F401

            return ["tensorrt"]
        except ImportError:
            return ["aot", "compiled"]
    return ["aot"]


def _device_and_dtype() -> tuple[str, torch.dtype]:
    return ("cuda", torch.float16) if cuda_available() else ("cpu", torch.float32)


def build_tensorrt(spec: GeneratorSpec, batch: int, engine_dir: Path) -> str:
    """Compile the exported graph with torch-tensorrt (FP16) and save it as an ExportedProgram."""
    import copy

    import torch_tensorrt

    key = EngineKey.for_spec(spec, kind="tensorrt", batch=batch, device="cuda")
    module = copy.deepcopy(spec.module).half().cuda().eval()
    inputs = list(spec.example_inputs(batch, "cuda", torch.float16))
    exported = torch.export.export(module, tuple(inputs))
    settings = {"enabled_precisions": {torch.float16}, "min_block_size": 1, "optimization_level": 5}
    try:
        trt_module = torch_tensorrt.dynamo.compile(exported, arg_inputs=inputs, **settings)
    except TypeError:  # torch-tensorrt before 2.4 named it ``inputs``
        trt_module = torch_tensorrt.dynamo.compile(exported, inputs=inputs, **settings)
    file = key.file_name(".ep")
    try:
        torch_tensorrt.save(trt_module, str(engine_dir / file), arg_inputs=inputs)
    except TypeError:
        torch_tensorrt.save(trt_module, str(engine_dir / file), inputs=inputs)
    return file


def build_aot(spec: GeneratorSpec, batch: int, engine_dir: Path) -> str:
    """torch.export → AOTInductor package, then a load-and-run check in a child process."""
    import copy

    device, dtype = _device_and_dtype()
    key = EngineKey.for_spec(spec, kind="aot", batch=batch, device=device)
    module = copy.deepcopy(spec.module).to(device=device, dtype=dtype).eval()
    inputs = spec.example_inputs(batch, device, dtype)
    with torch.no_grad():
        exported = torch.export.export(module, inputs)
        file = key.file_name(".pt2")
        torch._inductor.aoti_compile_and_package(exported, package_path=str(engine_dir / file))
    verify_package_loads(engine_dir / file, [tuple(t.shape) for t in inputs], device, str(dtype).replace("torch.", ""))
    return file


def verify_package_loads(path: Path, shapes: list[tuple[int, ...]], device: str, dtype: str) -> None:
    """Load and run the package in a fresh process: a crash there must not take us down."""
    code = (
        "import sys, torch\n"
        f"p = torch._inductor.aoti_load_package({str(path)!r})\n"
        f"x = [torch.rand(s, device={device!r}, dtype=torch.{dtype}) for s in {shapes!r}]\n"
        "out = p(*x)\n"
        "out = out if isinstance(out, (list, tuple)) else [out]\n"
        "sys.exit(0 if all(bool(torch.isfinite(o).all()) for o in out) else 3)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        path.unlink(missing_ok=True)
        why = f"crashed (signal {-done.returncode})" if done.returncode < 0 else ("gave NaN/inf" if done.returncode == 3 else (done.stderr.strip().splitlines() or ["?"])[-1][:200])
        raise ModelError(f"the AOTInductor package built for {path.name} cannot be loaded here: it {why}", "the compiled backend (torch.compile) is used instead")


def build_compile_cache(spec: GeneratorSpec, batch: int, engine_dir: Path) -> str:
    """Compile with torch.compile (as the compiled backend does) and keep Inductor's cache artifacts."""
    from realtime.inference.backend import CompiledBackend

    runner = CompiledBackend().load(spec, batch, engine_dir)
    for _ in range(2):  # compile and capture the CUDA graph, then one replay
        runner(*spec.example_inputs(batch))
    artifacts = torch.compiler.save_cache_artifacts()
    if artifacts is None:
        raise ModelError("torch.compile produced no cache artifacts", "the compiled backend still works; it compiles on first use")
    path = compile_cache_path(engine_dir, spec, batch)
    path.write_bytes(artifacts[0])
    return path.name


BUILDERS = {"tensorrt": build_tensorrt, "aot": build_aot, "compiled": build_compile_cache}
BLEND_JOB = "blend"  # with 'compiled': the blend's fused maths (blend_cache.py), not a generator engine


def build_engines(checkpoint: Path, batches: Sequence[int], engine_dir: Path, kinds: Sequence[str] | None = None, *, target_identity: int = 0) -> list[str]:
    """Build every (kind, batch); prints progress with an ETA; returns the files written."""
    spec = spec_from_checkpoint(checkpoint, target_identity=target_identity)
    kinds = list(kinds or default_kinds())
    for kind in kinds:
        if kind not in BUILDERS:
            raise ModelError(f"unknown engine kind {kind!r}", f"use some of {', '.join(KINDS)}")
        if kind in ("tensorrt", "compiled") and not cuda_available():
            raise ModelError(f"{kind} engines need a CUDA GPU", "build 'aot' on this machine, or run on a GPU machine")
    engine_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(kind, batch) for kind in kinds for batch in batches]
    if "compiled" in kinds:
        # the blend's fused maths, for the generator's crop size; first, because Inductor's saved
        # artifacts are everything compiled so far in the process: this way its file holds only them
        jobs.insert(0, (BLEND_JOB, 0))
    written: list[str] = []
    failures: list[str] = []
    t_start = time.perf_counter()
    device, _ = _device_and_dtype()
    for index, (kind, batch) in enumerate(jobs, 1):
        what = f"the fused blend kernels ({spec.crop_size} px crops)" if kind == BLEND_JOB else f"{kind} engine, batch {batch} ({spec.architecture}, {spec.crop_size} px)"
        print(f"[{index}/{len(jobs)}] building {what} ...", flush=True)
        t0 = time.perf_counter()
        try:
            if kind == BLEND_JOB:
                file = build_blend_cache(spec.crop_size, spec.architecture != "aei_net", engine_dir)
            else:
                file = BUILDERS[kind](spec, batch, engine_dir)
        except ModelError as exc:
            failures.append(str(exc))
            print(f"    failed: {exc}", flush=True)
            continue
        seconds = time.perf_counter() - t0
        if kind != BLEND_JOB:  # the blend's file names its GPU, torch and code itself (blend_cache.py)
            record_engine(engine_dir, EngineKey.for_spec(spec, kind=kind, batch=batch, device="cuda" if kind != "aot" else device), file, seconds)
        written.append(file)
        elapsed = time.perf_counter() - t_start
        eta = elapsed / index * (len(jobs) - index)
        print(f"    {file} in {seconds:.0f} s; ETA for the rest {eta:.0f} s", flush=True)
    if not written and failures:
        raise ModelError(f"no engine could be built ({failures[0]})", "see the messages above")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="build_engines.py", description="Build FP16 generator engines (default folder: ~/.cache/realtime/engines).")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_from_args(args)
    except ModelError as exc:
        print(f"build_engines: error: {exc}", file=sys.stderr)
        return 1


def run_from_args(args: argparse.Namespace) -> int:
    if any(b < 1 or b > 64 for b in args.batch):
        raise ModelError("--batch values must be between 1 and 64", "e.g. --batch 1 2 4")
    from realtime.inference.engine_dir import resolve_engines_dir

    engines_dir = resolve_engines_dir(args.engines_dir)
    written = build_engines(args.checkpoint, args.batch, engines_dir, args.kinds, target_identity=args.target_identity)
    print(f"built {len(written)} engine(s) in {engines_dir}")
    return 0
