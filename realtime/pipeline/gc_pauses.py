"""How often Python's garbage collector ran during a run, and how long it stopped every thread.

A collection holds the interpreter lock: every stage thread waits for it, so a slow one shows up
as a latency spike charged to whichever stage happened to be working. The pipeline freezes the
objects made at set-up out of the collector's reach (``Pipeline.start``); this records what is
left, per generation, so a report can say whether a spike was a collection (periodic ~100-ms
stalls that drop frames are what to rule it in or out for).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from typing import Any

LONG_PAUSE_MS = 5.0  # pauses at least this long are kept with their time, to line up with slow frames
LONG_PAUSES_KEPT = 50


class GcPauses:
    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.total_ms = [0.0, 0.0, 0.0]
        self.max_ms = [0.0, 0.0, 0.0]
        self.long_pauses: list[tuple[int, int, float]] = []  # (perf_counter_ns at its start, generation, pause ms)
        self._began_ns = 0
        self._watching = False

    key = "gc"

    def start(self, workers: Sequence[Any] = ()) -> None:
        if not self._watching:
            gc.callbacks.append(self._on_gc)
            self._watching = True

    def stop(self) -> None:
        if self._watching:
            gc.callbacks.remove(self._on_gc)
            self._watching = False

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        # runs inside the collection, holding the interpreter lock: only arithmetic here
        now_ns = time.perf_counter_ns()
        if phase == "start":
            self._began_ns = now_ns
            return
        generation, pause_ms = info["generation"], (now_ns - self._began_ns) / 1e6
        self.count[generation] += 1
        self.total_ms[generation] += pause_ms
        self.max_ms[generation] = max(self.max_ms[generation], pause_ms)
        if pause_ms >= LONG_PAUSE_MS and len(self.long_pauses) < LONG_PAUSES_KEPT:
            self.long_pauses.append((self._began_ns, generation, pause_ms))

    def summary(self, origin_ns: int = 0) -> dict[str, Any]:
        """Counts and pauses; long pauses timed from ``origin_ns`` (the report's first capture, so
        they line up with its frames' ``t_capture_ms``)."""
        return {
            "collections": list(self.count),  # per generation 0, 1, 2 (2: a full collection)
            "pause_ms_total": [round(ms, 3) for ms in self.total_ms],
            "pause_ms_max": [round(ms, 3) for ms in self.max_ms],
            "long_pauses": [{"t_ms": round((t - origin_ns) / 1e6, 1), "generation": g, "pause_ms": round(ms, 2)} for t, g, ms in self.long_pauses],
        }
