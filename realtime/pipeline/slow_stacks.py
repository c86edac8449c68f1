"""Every thread's stack, taken while a stage is stuck in the middle of a slow frame.

A report says *that* a stage took 80 ms on a frame, not *where*: a four-face run can have such
stalls every second or two, in whichever of swap and blend was
working. With ``--slow-stage-ms N`` a watcher thread looks at the workers every 2 ms; once a worker
has been inside one frame for N ms, the Python stacks of all threads are taken there and then (one
snapshot per stuck frame), so the report shows the line each thread was on. While nothing is slow
a look costs a few attribute reads.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Sequence
from typing import Any, Protocol

from realtime.pipeline.thread_names import name_os_thread

LOOK_EVERY_S = 0.002
SNAPSHOTS_KEPT = 20
FRAMES_PER_STACK = 8  # the innermost ones: where the thread is, and what called it


class Watched(Protocol):
    """A worker that says which frame it is in since when (0: none)."""

    stage_name: str
    busy_since_ns: int
    busy_frame: int
    ident: int | None


def stack_lines(frame: Any) -> list[str]:
    """The innermost ``FRAMES_PER_STACK`` entries of a stack, innermost last: 'file:line function'."""
    entries = traceback.extract_stack(frame)[-FRAMES_PER_STACK:]
    return [f"{'/'.join(e.filename.split('/')[-2:])}:{e.lineno} {e.name}" for e in entries]


def named_stacks() -> str:
    """Every thread's whole Python stack under its name (``rt-swap``, not a numeric id), as text."""
    names = {thread.ident: thread.name.replace("realtime-", "rt-", 1) for thread in threading.enumerate()}
    parts = []
    for ident, frame in sys._current_frames().items():
        parts.append(f"thread {names.get(ident, '?')} ({ident}), most recent call last:\n" + "".join(traceback.format_stack(frame)))
    return "\n".join(parts)


class SlowStageWatch:
    def __init__(self, threshold_ms: float) -> None:
        self.threshold_ns = int(threshold_ms * 1e6)
        self.snapshots: list[dict[str, Any]] = []
        self.caught = 0  # stuck frames seen
        self.missed = 0  # of those, seen after the snapshots were full
        self._workers: Sequence[Watched] = ()
        self._last_caught: dict[str, int] = {}  # per stage: busy_since_ns of the frame last caught
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    key = "slow_stage_stacks"

    def start(self, workers: Sequence[Watched]) -> None:
        self._workers = list(workers)
        self._thread = threading.Thread(target=self._run, name="realtime-slowwatch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)

    def _run(self) -> None:
        name_os_thread("slowwatch")
        while not self._stop.wait(LOOK_EVERY_S):
            self.look(time.perf_counter_ns())

    def look(self, now_ns: int) -> None:
        """Snap every thread if a worker has been in one frame for the threshold or longer."""
        for worker in self._workers:
            since = worker.busy_since_ns
            if not since or now_ns - since < self.threshold_ns or self._last_caught.get(worker.stage_name) == since:
                continue
            self._last_caught[worker.stage_name] = since
            self.caught += 1
            if len(self.snapshots) >= SNAPSHOTS_KEPT:
                self.missed += 1
                continue
            names = {t.ident: t.name.removeprefix("realtime-") for t in threading.enumerate()}
            frames = sys._current_frames()
            self.snapshots.append({
                "t_ns": now_ns, "stage": worker.stage_name, "frame": worker.busy_frame, "busy_ms": round((now_ns - since) / 1e6, 1),
                "threads": {names.get(ident, str(ident)): stack_lines(frame) for ident, frame in frames.items() if ident != threading.get_ident()},
            })

    def summary(self, origin_ns: int) -> dict[str, Any]:
        snapshots = [{**{k: v for k, v in s.items() if k != "t_ns"}, "t_ms": round((s["t_ns"] - origin_ns) / 1e6, 1)} for s in self.snapshots]
        return {"threshold_ms": self.threshold_ns / 1e6, "caught": self.caught, "missed": self.missed, "snapshots": snapshots}
