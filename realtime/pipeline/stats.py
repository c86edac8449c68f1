"""Latency and throughput, observed from the stamps each frame record carries.

Workers only stamp bundles; this module turns the stamps into per-stage and end-to-end figures.
Histograms are logarithmic with ~1% resolution, so an hours-long demo-booth run keeps constant
memory while p50/p95/p99 stay exact to within that 1%.
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from realtime.bundle import FrameBundle
from realtime.pipeline.queues import FrameQueue
from realtime.pipeline.stage import Observer

_MIN_MS = 1e-3
_RATIO = 1.01
_LOG_RATIO = math.log(_RATIO)
_BINS = int(math.log(1e6 / _MIN_MS) / _LOG_RATIO) + 2  # 1 µs .. 1000 s


class LatencyHistogram:
    """Streaming histogram of durations in milliseconds."""

    def __init__(self) -> None:
        self.counts = [0] * _BINS
        self.count = 0
        self.total_ms = 0.0
        self.min_ms = math.inf
        self.max_ms = 0.0

    def add(self, value_ms: float) -> None:
        value_ms = max(value_ms, 0.0)
        index = 0 if value_ms <= _MIN_MS else min(int(math.log(value_ms / _MIN_MS) / _LOG_RATIO) + 1, _BINS - 1)
        self.counts[index] += 1
        self.count += 1
        self.total_ms += value_ms
        self.min_ms = min(self.min_ms, value_ms)
        self.max_ms = max(self.max_ms, value_ms)

    def percentile(self, q: float) -> float:
        """The q-th percentile (0..100), to within one bin (~1%)."""
        if self.count == 0:
            return math.nan
        rank = q / 100.0 * self.count
        seen = 0
        for index, n in enumerate(self.counts):
            seen += n
            if n and seen >= rank:
                if index == 0:
                    estimate = _MIN_MS
                else:  # geometric middle of the bin [MIN*R^(i-1), MIN*R^i)
                    estimate = _MIN_MS * _RATIO ** (index - 0.5)
                return min(max(estimate, self.min_ms), self.max_ms)
        return self.max_ms

    def bins(self) -> list[tuple[float, float, int]]:
        """Non-empty bins as ``(lower_ms, upper_ms, count)``, for plots."""
        out = []
        for index, n in enumerate(self.counts):
            if n:
                lower = 0.0 if index == 0 else _MIN_MS * _RATIO ** (index - 1)
                out.append((round(lower, 5), round(_MIN_MS * _RATIO**index, 5), n))
        return out

    def summary(self) -> dict[str, float | int]:
        if self.count == 0:
            return {"count": 0}
        return {
            "count": self.count,
            "mean": round(self.total_ms / self.count, 4),
            "min": round(self.min_ms, 4),
            "p50": round(self.percentile(50), 4),
            "p95": round(self.percentile(95), 4),
            "p99": round(self.percentile(99), 4),
            "max": round(self.max_ms, 4),
        }


@dataclass
class _Window:
    """What happened in the last second, for the live status line."""

    done_ns: deque[int]
    latency_ms: deque[float]


SLOWEST_KEPT = 10


class StatsCollector:
    """Thread-safe sink for every measurement of one run."""

    def __init__(self, primary_sink: str | None = None, total_frames: int | None = None) -> None:
        self.primary_sink = primary_sink
        self.total_frames = total_frames
        self._lock = threading.Lock()
        self.process_ms: dict[str, LatencyHistogram] = {}
        self.wait_ms: dict[str, LatencyHistogram] = {}
        self.sink_write_ms: dict[str, LatencyHistogram] = {}
        self.sink_latency_ms: dict[str, LatencyHistogram] = {}
        self.latency_ms = LatencyHistogram()
        self.captured = 0
        self.written: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.failed_frames = 0
        self.queues: list[FrameQueue[Any]] = []
        self.t_start_ns = time.perf_counter_ns()
        self.t_first_capture_ns: int | None = None
        self.t_last_done_ns: int | None = None
        self._window = _Window(deque(), deque())
        # The last frames' stage timings, for the timeline plot (bounded: a booth runs for hours).
        self.timeline: deque[dict[str, Any]] = deque(maxlen=240)
        self.slowest: list[tuple[float, int, dict[str, Any]]] = []  # a min-heap of the slowest frames
        self.t_setup_start_ns: int | None = None
        self.first_latency_ms: float | None = None
        self.observers: list[Observer] = []  # what the pipeline was given to watch the run; in the report

    def watch_queues(self, queues: list[FrameQueue[Any]]) -> None:
        self.queues = list(queues)

    def frame_captured(self, bundle: FrameBundle) -> None:
        with self._lock:
            self.captured += 1
            if self.t_first_capture_ns is None:
                self.t_first_capture_ns = bundle.t_capture_ns

    def frame_failed(self, stage: str, error: Exception) -> None:
        with self._lock:
            self.failures[f"{stage}: {type(error).__name__}"] += 1

    def frame_written(self, sink: str, bundle: FrameBundle, t_start_ns: int, t_end_ns: int) -> None:
        latency_ms = (t_end_ns - bundle.t_capture_ns) / 1e6
        with self._lock:
            self.written[sink] += 1
            self._hist(self.sink_write_ms, sink).add((t_end_ns - t_start_ns) / 1e6)
            self._hist(self.wait_ms, f"sink:{sink}").add((t_start_ns - bundle.t_enqueued_ns) / 1e6)
            self._hist(self.sink_latency_ms, sink).add(latency_ms)
            if sink != (self.primary_sink or sink):
                return
            # The primary sink defines "a frame is done": stage timings are read once, here.
            for stage, timing in bundle.timings.items():
                self._hist(self.process_ms, stage).add(timing.process_ms)
                self._hist(self.wait_ms, stage).add(timing.wait_ms)
            if bundle.failed_stages:
                self.failed_frames += 1
            self.latency_ms.add(latency_ms)
            if self.first_latency_ms is None:
                self.first_latency_ms = latency_ms
            entry = {
                "frame": bundle.frame_id,
                "t_capture_ms": (bundle.t_capture_ns - (self.t_first_capture_ns or bundle.t_capture_ns)) / 1e6,
                "stages": [[stage, round(t.wait_ms, 4), round(t.process_ms, 4)] for stage, t in bundle.timings.items()],
                "sink_wait_ms": round((t_start_ns - bundle.t_enqueued_ns) / 1e6, 4),
                "sink_ms": round((t_end_ns - t_start_ns) / 1e6, 4),
                "latency_ms": round(latency_ms, 4),
            }
            self.timeline.append(entry)
            # the slowest frames whole, to see which stage a p99 spike came from
            heapq.heappush(self.slowest, (latency_ms, bundle.frame_id, entry))
            if len(self.slowest) > SLOWEST_KEPT:
                heapq.heappop(self.slowest)
            self.t_last_done_ns = t_end_ns
            self._window.done_ns.append(t_end_ns)
            self._window.latency_ms.append(latency_ms)
            self._trim_window(t_end_ns)

    @staticmethod
    def _hist(table: dict[str, LatencyHistogram], key: str) -> LatencyHistogram:
        if key not in table:
            table[key] = LatencyHistogram()
        return table[key]

    def _trim_window(self, now_ns: int) -> None:
        while self._window.done_ns and now_ns - self._window.done_ns[0] > 1_000_000_000:
            self._window.done_ns.popleft()
            self._window.latency_ms.popleft()

    @property
    def frames_done(self) -> int:
        return self.written[self.primary_sink] if self.primary_sink else self.captured

    def drops(self) -> dict[str, int]:
        return {q.name: q.drops for q in self.queues}

    def status_line(self) -> str:
        """One line for ``--stats``: recent fps, recent latency, progress with ETA, drops, errors."""
        now_ns = time.perf_counter_ns()
        with self._lock:
            self._trim_window(now_ns)
            fps = len(self._window.done_ns)
            recent = sorted(self._window.latency_ms)
            done = self.frames_done
            failed = sum(self.failures.values())
        parts = [f"{fps:3d} fps"]
        if recent:
            parts.append(f"latency p50 {recent[len(recent) // 2]:.1f} ms max {recent[-1]:.1f} ms")
        if self.total_frames:
            elapsed_s = (now_ns - self.t_start_ns) / 1e9
            rate = done / elapsed_s if elapsed_s > 0 else 0.0
            eta = (self.total_frames - done) / rate if rate > 0 else math.inf
            eta_text = f"{eta:.0f} s" if math.isfinite(eta) else "?"
            parts.append(f"frame {done}/{self.total_frames} ({100 * done / self.total_frames:.0f}%) ETA {eta_text}")
        else:
            parts.append(f"frame {done}")
        drops = sum(self.drops().values())
        parts.append(f"dropped {drops}")
        parts.append(f"failed {failed}")
        return " | ".join(parts)

    def live(self) -> dict[str, Any]:
        """The last second's fps and end-to-end latency, each stage's p50/p99 so far, drops and
        failures: what a live panel shows every second."""
        now_ns = time.perf_counter_ns()
        with self._lock:
            self._trim_window(now_ns)
            recent = sorted(self._window.latency_ms)
            stages = {name: {"p50": round(hist.percentile(50), 2), "p99": round(hist.percentile(99), 2)} for name, hist in self.process_ms.items() if hist.count}
            done, failed = self.frames_done, sum(self.failures.values())
            fps = len(self._window.done_ns)
        latency = {"p50": round(recent[len(recent) // 2], 2), "p99": round(recent[min(len(recent) - 1, int(len(recent) * 0.99))], 2)} if recent else {}
        return {"fps": fps, "latency_ms": latency, "stages_ms": stages, "frames": done, "dropped": sum(self.drops().values()), "failed": failed}

    def report(self, meta: dict[str, Any] | None = None) -> dict[str, Any]:
        """Everything measured, as a JSON-ready dict (percentiles per stage and end to end)."""
        with self._lock:
            duration_s = None
            if self.t_first_capture_ns is not None and self.t_last_done_ns is not None:
                duration_s = (self.t_last_done_ns - self.t_first_capture_ns) / 1e9
            done = self.frames_done
            stages = {
                name: {"process_ms": hist.summary(), "wait_ms": self.wait_ms[name].summary()}
                for name, hist in self.process_ms.items()
            }
            sinks = {
                name: {
                    "written": self.written[name],
                    "write_ms": hist.summary(),
                    "wait_ms": self.wait_ms[f"sink:{name}"].summary(),
                    "latency_ms": self.sink_latency_ms[name].summary(),
                }
                for name, hist in self.sink_write_ms.items()
            }
            return {
                **(meta or {}),
                "frames": {
                    "captured": self.captured,
                    "done": done,
                    "failed_frames": self.failed_frames,
                    "failures": dict(self.failures),
                    "dropped": {q.name: q.drops for q in self.queues},
                },
                "duration_s": round(duration_s, 4) if duration_s is not None else None,
                "startup_s": round((self.t_start_ns - self.t_setup_start_ns) / 1e9, 3) if self.t_setup_start_ns else None,
                "first_frame_latency_ms": round(self.first_latency_ms, 3) if self.first_latency_ms is not None else None,
                "timeline": list(self.timeline)[-60:],
                "slowest_frames": [entry for _, _, entry in sorted(self.slowest, key=lambda x: -x[0])],
                "dropped_frame_ids": {q.name: list(q.dropped_ids) for q in self.queues if q.dropped_ids},
                "throughput_fps": round(done / duration_s, 3) if duration_s else None,
                "latency_ms": self.latency_ms.summary(),
                "latency_histogram_ms": self.latency_ms.bins(),
                "stages": stages,
                "sinks": sinks,
                "queues": {
                    q.name: {"capacity": q.capacity, "policy": q.policy, "peak_depth": q.peak_depth, "puts": q.puts}
                    for q in self.queues
                },
                **{observer.key: observer.summary(self.t_first_capture_ns or 0) for observer in self.observers},
                # the frames' clock (t_capture_ms 0) as time.perf_counter_ns, CLOCK_MONOTONIC on Linux:
                # lines the frames up with other tools' samples (bench/thread_monitor.py)
                "clock_origin_ns": self.t_first_capture_ns,
            }
