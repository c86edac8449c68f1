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


def select_runner(spec: GeneratorSpec, batch: int, engine_dir: Path, order: Sequence[str] = DEFAULT_ORDER, backends: Sequence[Backend] | None = None) -> Selection:
    """Try backends in ``order``; FP16 outputs are checked for NaN/inf on a warm-up batch."""
    candidates = list(backends) if backends is not None else make_backends(order)
    skipped: list[tuple[str, str]] = []
    for backend in candidates:
        reason = backend.unavailable_reason()
        if reason is None:
            try:
                runner = backend.load(spec, batch, engine_dir)
                outputs = runner(*spec.example_inputs(batch))
                if outputs_are_finite(outputs):
                    if skipped:
                        log.info("generator backend: %s (%s)", backend.name, runner.detail)
                    return Selection(runner, skipped)
                reason = "produced NaN/inf on a test batch"
                log.warning("dropping generator backend %s: it %s", backend.name, reason)
            except ModelError as exc:
                reason = str(exc)
            except Exception as exc:  # noqa: BLE001 - any failure means: use the next backend
                reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
                log.warning("generator backend %s failed to load: %s", backend.name, reason)  # not a quiet fallback
        log.info("generator backend %s skipped: %s", backend.name, reason)
        skipped.append((backend.name, reason))
    raise ModelError("no generator backend could run", "; ".join(f"{n}: {r}" for n, r in skipped))
