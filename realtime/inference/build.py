"""Engine builds: a checkpoint and the batch sizes the live path uses → engines in ``engines/``.

On a CUDA machine with torch-tensorrt: TensorRT FP16 engines (dynamo front end, from the same
``torch.export`` graph the tests check). Otherwise: AOTInductor packages (FP16 on CUDA, FP32 on
CPU), each loaded once in a child process before it is listed — a package that cannot be loaded
must never reach the live path — and, on CUDA, torch.compile cache artifacts as well.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from realtime.errors import ModelError
from realtime.inference.backend import cuda_available
from realtime.inference.build_options import KINDS
from realtime.inference.manifest import EngineKey, compile_cache_path, record_engine
from realtime.inference.spec import GeneratorSpec

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
Prelude = Sequence[tuple[str, Callable[[], str]]]  # (what, build it → the file written), run first


def build_engines(spec: GeneratorSpec, batches: Sequence[int], engine_dir: Path, kinds: Sequence[str] | None = None, *, prelude: Prelude = ()) -> list[str]:
    """Build every (kind, batch) of ``spec``, after the ``prelude`` jobs (other kernels the caller
    wants in the same folder, e.g. the blend's); prints progress with an ETA; returns the files written."""
    kinds = list(kinds or default_kinds())
    for kind in kinds:
        if kind not in BUILDERS:
            raise ModelError(f"unknown engine kind {kind!r}", f"use some of {', '.join(KINDS)}")
        if kind in ("tensorrt", "compiled") and not cuda_available():
            raise ModelError(f"{kind} engines need a CUDA GPU", "build 'aot' on this machine, or run on a GPU machine")
    engine_dir.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[str, int, Callable[[], str] | None]] = [(what, 0, build) for what, build in prelude]
    jobs += [(kind, batch, None) for kind in kinds for batch in batches]
    written: list[str] = []
    failures: list[str] = []
    t_start = time.perf_counter()
    device, _ = _device_and_dtype()
    for index, (kind, batch, build) in enumerate(jobs, 1):
        what = kind if build is not None else f"{kind} engine, batch {batch} ({spec.architecture}, {spec.crop_size} px)"
        print(f"[{index}/{len(jobs)}] building {what} ...", flush=True)
        t0 = time.perf_counter()
        try:
            file = build() if build is not None else BUILDERS[kind](spec, batch, engine_dir)
        except ModelError as exc:
            failures.append(str(exc))
            print(f"    failed: {exc}", flush=True)
            continue
        seconds = time.perf_counter() - t0
        if build is None:  # a prelude's file names what it is valid for itself
            record_engine(engine_dir, EngineKey.for_spec(spec, kind=kind, batch=batch, device="cuda" if kind != "aot" else device), file, seconds)
        written.append(file)
        elapsed = time.perf_counter() - t_start
        eta = elapsed / index * (len(jobs) - index)
        print(f"    {file} in {seconds:.0f} s; ETA for the rest {eta:.0f} s", flush=True)
    if not written and failures:
        raise ModelError(f"no engine could be built ({failures[0]})", "see the messages above")
    return written
