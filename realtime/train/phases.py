"""Where a training step's time goes: named phases timed without adding a synchronisation inside
the step (on CUDA, events recorded on the stream and read after the step; on the CPU, the
clock). Trainers time their phases through ``clock.phase(name)``; the default clock does nothing."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import torch


class NullClock:
    @contextmanager
    def phase(self, _name: str) -> Iterator[None]:
        yield

    def end_step(self) -> None:
        pass


class PhaseClock(NullClock):
    """Accumulates each phase's time over the steps it sees; ``summary()`` in ms per step."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.totals_ms: dict[str, float] = defaultdict(float)
        self.steps = 0
        self._pending: list[tuple[str, object, object]] = []

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            yield
            end.record()
            self._pending.append((name, start, end))
        else:
            t0 = time.perf_counter()
            yield
            self.totals_ms[name] += (time.perf_counter() - t0) * 1000

    def end_step(self) -> None:
        """Collect this step's GPU timings (after the step: the wait is outside the phases)."""
        for name, start, end in self._pending:
            end.synchronize()  # type: ignore[attr-defined]
            self.totals_ms[name] += start.elapsed_time(end)  # type: ignore[attr-defined]
        self._pending.clear()
        self.steps += 1

    def summary(self) -> dict[str, float]:
        return {name: round(total / max(self.steps, 1), 3) for name, total in self.totals_ms.items()}
