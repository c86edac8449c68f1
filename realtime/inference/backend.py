"""Inference backends: one class per engine kind, all behind the same small interface.

A ``GeneratorSpec`` says what to run (the module, its inputs); a ``Backend`` turns it into a
``Runner`` for one static batch size on one device, or says why it cannot. Backends, in the
order the live path prefers them: ``tensorrt`` (torch-tensorrt engine), ``aot`` (AOTInductor
package), ``compiled`` (torch.compile, replayed as a CUDA graph), ``eager-cuda`` (FP16), ``cpu`` (FP32).
"""

from __future__ import annotations

import importlib.util
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import torch

from realtime.errors import ModelError
from realtime.inference.spec import GeneratorSpec, Runner

log = logging.getLogger("realtime")


class Backend(ABC):
    name: str = "backend"

    @abstractmethod
    def unavailable_reason(self) -> str | None:
        """None when this backend can run here; otherwise one line saying why not."""

    @abstractmethod
    def load(self, spec: GeneratorSpec, batch: int, engine_dir: Path) -> Runner:
        """A runner for ``batch`` faces; raises ModelError when it cannot be made."""


def cuda_available() -> bool:
    return torch.cuda.is_available()


class CpuBackend(Backend):
    name = "cpu"

    def unavailable_reason(self) -> str | None:
        return None

    def load(self, spec: GeneratorSpec, batch: int, engine_dir: Path) -> Runner:
        module = spec.module.float().eval()
        return Runner(self.name, module, device=torch.device("cpu"), dtype=torch.float32, batch=batch, detail="eager FP32")


class EagerCudaBackend(Backend):
    name = "eager-cuda"
    dtype = torch.float16
    detail = "eager FP16"

    def unavailable_reason(self) -> str | None:
        return None if cuda_available() else "no CUDA GPU"

    def load(self, spec: GeneratorSpec, batch: int, engine_dir: Path) -> Runner:
        import copy

        module = copy.deepcopy(spec.module).to(device="cuda", dtype=self.dtype).eval()
        return Runner(self.name, module, device=torch.device("cuda"), dtype=self.dtype, batch=batch, detail=self.detail)


class EagerCudaFp32Backend(EagerCudaBackend):
    """Reference only (never chosen for the live path): what the compiled backends are measured against."""

    name = "eager-cuda-fp32"
    dtype = torch.float32
    detail = "eager FP32 (reference)"


class EagerCudaBf16Backend(EagerCudaBackend):
    """The precision policy's fallback when FP16 does not match FP32 on the user's face."""

    name = "eager-cuda-bf16"
    dtype = torch.bfloat16
    detail = "eager BF16"


class OnnxRuntimeBackend(Backend):
    """Users' ONNX files run by onnxruntime (its CUDA provider with onnxruntime-gpu, else the CPU),
    behind the same adapter as our converter: a reference, and a choice for those who have it."""

    name = "onnxruntime"

    def unavailable_reason(self) -> str | None:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return "onnxruntime is not installed (pip install onnxruntime or onnxruntime-gpu)"
        return None

    def load(self, spec: GeneratorSpec, batch: int, engine_dir: Path) -> Runner:
        if spec.onnxruntime_module is None:
            raise ModelError("onnxruntime runs only users' ONNX generators", "use another backend for this checkpoint")
        module = spec.onnxruntime_module()
        network = getattr(getattr(module, "generator", module), "network", None)
        provider = getattr(network, "provider", "?")
        return Runner(self.name, module, device=torch.device("cpu"), dtype=torch.float32, batch=batch, detail=f"onnxruntime FP32, {provider}")


class CompiledBackend(Backend):
    """torch.compile (Inductor's kernels), FP16, replayed as one CUDA graph per batch size.

    The graph is captured by ``GraphReplay`` on the first call, not by torch.compile's
    ``reduce-overhead`` mode: its graph trees are per thread and may re-record mid-run, which this
    multi-threaded pipeline cannot have (``gpu/graphs.py`` says why). Compiled kernels are cached
    by Inductor; ``build_engines`` also stores the cache artifacts in ``engines/`` so a fresh
    process starts warm."""

    name = "compiled"

    def unavailable_reason(self) -> str | None:
        if not cuda_available():
            return "no CUDA GPU (the compiled backend replays a CUDA graph)"
        if importlib.util.find_spec("triton") is None:
            return "triton is not installed"
        return None

    def load(self, spec: GeneratorSpec, batch: int, engine_dir: Path) -> Runner:
        import copy

        from realtime.gpu.graphs import GraphReplay
        from realtime.inference.manifest import load_compile_cache

        cache_note = load_compile_cache(engine_dir, spec, batch)
        module = copy.deepcopy(spec.module).half().cuda().eval()
        compiled = torch.compile(module, fullgraph=True, dynamic=False)  # default mode: no graph trees
        replay = GraphReplay(compiled, torch.device("cuda"))
        return Runner(self.name, replay, device=torch.device("cuda"), dtype=torch.float16, batch=batch, detail=f"torch.compile FP16, one CUDA graph; {cache_note}")


class AotPackageBackend(Backend):
    """An AOTInductor package built by ``build_engines`` (FP16 on CUDA, FP32 on CPU)."""

    name = "aot"

    def unavailable_reason(self) -> str | None:
        return None

    def load(self, spec: GeneratorSpec, batch: int, engine_dir: Path) -> Runner:
        from realtime.inference.manifest import find_engine

        device = "cuda" if cuda_available() else "cpu"
        entry = find_engine(engine_dir, spec, kind="aot", batch=batch, device=device)
        log.info("generator: loading engine %s (sha256 %s…)", engine_dir / entry.file, entry.file_sha256[:12])
        package = torch._inductor.aoti_load_package(str(engine_dir / entry.file))
        dtype = torch.float16 if device == "cuda" else torch.float32
        return Runner(self.name, package, device=torch.device(device), dtype=dtype, batch=batch, detail=f"AOTInductor package {entry.file}")


class TensorRTBackend(Backend):
    """A TensorRT engine built by ``build_engines`` through torch-tensorrt's dynamo front end.

    Written from torch-tensorrt's documentation; it could not be run in this project's workplace
    (no TensorRT libraries there), see docs/ENGINES.md."""

    name = "tensorrt"

    def unavailable_reason(self) -> str | None:
        if importlib.util.find_spec("torch_tensorrt") is None:
            return "torch-tensorrt is not installed (pip install '.[tensorrt]')"
        if not cuda_available():
            return "no CUDA GPU"
        return None

    def load(self, spec: GeneratorSpec, batch: int, engine_dir: Path) -> Runner:
        import torch_tensorrt  # noqa: F401 - registers the TensorRT runtime ops torch.export.load needs

        from realtime.inference.manifest import find_engine

        entry = find_engine(engine_dir, spec, kind="tensorrt", batch=batch, device="cuda")
        log.info("generator: loading engine %s (sha256 %s…)", engine_dir / entry.file, entry.file_sha256[:12])
        module = torch.export.load(str(engine_dir / entry.file)).module()
        return Runner(self.name, module, device=torch.device("cuda"), dtype=torch.float16, batch=batch, detail=f"TensorRT engine {entry.file}")


BACKENDS: dict[str, type[Backend]] = {
    backend.name: backend for backend in (TensorRTBackend, AotPackageBackend, CompiledBackend, EagerCudaBackend, EagerCudaBf16Backend, EagerCudaFp32Backend, OnnxRuntimeBackend, CpuBackend)
}
DEFAULT_ORDER: tuple[str, ...] = ("tensorrt", "aot", "compiled", "eager-cuda", "cpu")


def make_backends(names: Sequence[str]) -> list[Backend]:
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        raise ModelError(f"unknown backend {unknown[0]!r}", f"use some of {', '.join(DEFAULT_ORDER)}")
    return [BACKENDS[n]() for n in names]
