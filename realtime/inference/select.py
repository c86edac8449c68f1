"""Choosing a backend: the first in preference order that can run here and gives finite output.

Every backend passed over is logged with the reason, once; the chosen one is reported in stats,
``doctor`` and benchmark output. Never a silent downgrade."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from realtime.errors import ModelError
from realtime.inference.backend import DEFAULT_ORDER, Backend, make_backends
from realtime.inference.spec import GeneratorSpec, Runner

log = logging.getLogger("realtime")


@dataclass
class Selection:
    runner: Runner
    skipped: list[tuple[str, str]] = field(default_factory=list)


def outputs_are_finite(outputs: tuple[torch.Tensor, ...]) -> bool:
    return all(bool(torch.isfinite(o).all()) for o in outputs)


# Reduced precision is accepted when 99.9 % of the output pixels stay within 2/255 of FP32 on a
# real face (the maximum alone is set by one pixel of a large model), and every value is finite.
PRECISION_TOLERANCE = 2 / 255
PRECISION_QUANTILE = 0.999


@dataclass
class PrecisionReference:
    """A real face and its identity, and the FP32 output on them (computed once per generator,
    on the GPU when there is one: every batch size's selection compares with it)."""

    inputs: tuple[torch.Tensor, ...]
    _expected: torch.Tensor | None = None

    def expected(self, spec: GeneratorSpec) -> torch.Tensor:
        if self._expected is None:
            import copy

            device = "cuda" if torch.cuda.is_available() else "cpu"
            module = copy.deepcopy(spec.module).to(device=device, dtype=torch.float32).eval()
            with torch.inference_mode():
                out = module(*[t.to(device=device, dtype=torch.float32) for t in self.inputs])
            self._expected = (out if isinstance(out, tuple) else (out,))[0].float().cpu()
            del module
        return self._expected


def precision_gap(outputs: tuple[torch.Tensor, ...], expected: torch.Tensor) -> float:
    """The 99.9th percentile of |Δ| between a runner's face output and FP32's, in [0, 1] units."""
    got = outputs[0][: len(expected)].float().cpu()
    difference = ((got - expected).abs() / 2).flatten()  # outputs are in [-1, 1]
    return float(torch.quantile(difference[:: max(1, difference.numel() // 1_000_000)], PRECISION_QUANTILE))


def precision_fallbacks(order: Sequence[str]) -> list[str]:
    """``order``, with BF16 and then FP32 eager CUDA tried before the CPU: where FP16 fails the
    comparison on a user's face, the next precision up is the fallback, not the CPU."""
    extra = [name for name in ("eager-cuda-bf16", "eager-cuda-fp32") if name not in order]
    cpu_at = order.index("cpu") if "cpu" in order else len(order)
    return [*order[:cpu_at], *extra, *order[cpu_at:]]


def select_runner(
    spec: GeneratorSpec, batch: int, engine_dir: Path, order: Sequence[str] = DEFAULT_ORDER, backends: Sequence[Backend] | None = None,
    *, reference: PrecisionReference | None = None,
) -> Selection:
    """Try backends in ``order``; outputs are checked for NaN/inf on a warm-up batch. With a
    ``reference`` (a real face and its identity), a reduced-precision runner must also match FP32
    on it (``PRECISION_TOLERANCE``), else BF16 and then FP32 are tried, and the reason is logged."""
    if reference is not None and backends is None:
        order = precision_fallbacks(list(order))
    candidates = list(backends) if backends is not None else make_backends(order)
    expected = reference.expected(spec) if reference is not None else None
    skipped: list[tuple[str, str]] = []
    for backend in candidates:
        reason = backend.unavailable_reason()
        if reason is None:
            try:
                runner = backend.load(spec, batch, engine_dir)
                outputs = runner(*spec.example_inputs(batch))
                gap = 0.0
                if expected is not None and runner.dtype != torch.float32:
                    assert reference is not None
                    outputs = runner(*[t.repeat(batch, *([1] * (t.dim() - 1))) for t in reference.inputs])
                    gap = precision_gap(outputs, expected) if outputs_are_finite(outputs) else float("inf")
                if outputs_are_finite(outputs) and gap <= PRECISION_TOLERANCE:
                    if skipped:
                        log.info("generator backend: %s (%s)", backend.name, runner.detail)
                    if expected is not None:
                        log.info("generator precision: %s, within %.4f of FP32 on the source face", str(runner.dtype).replace("torch.", ""), gap)
                    return Selection(runner, skipped)
                reason = "produced NaN/inf on a test batch" if gap <= PRECISION_TOLERANCE else f"{str(runner.dtype).replace('torch.', '')} differs from FP32 by {gap:.4f} (> 2/255) on the source face"
                log.warning("dropping generator backend %s: it %s", backend.name, reason)
            except ModelError as exc:
                reason = str(exc)
            except Exception as exc:  # noqa: BLE001 - any failure means: use the next backend
                reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
                log.warning("generator backend %s failed to load: %s", backend.name, reason)  # not a quiet fallback
        log.info("generator backend %s skipped: %s", backend.name, reason)
        skipped.append((backend.name, reason))
    raise ModelError("no generator backend could run", "; ".join(f"{n}: {r}" for n, r in skipped))
