"""Benchmarks that print figures (never asserted in tests).

``bench_engine`` isolates the pipeline engine: pass-through stages on 1080p frames, so what it
measures is the cost of threads, queues and timing alone. Throughput comes from unpaced runs
(blocking queues, as fast as possible); the latency each queue hop adds comes from paced runs,
where queues are empty and latency is pure hand-over cost.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from realtime.io.sinks import NullSink
from realtime.pipeline.pipeline import Pipeline
from realtime.pipeline.queues import Policy
from realtime.report import device_info
from realtime.stages.capture import CaptureStage
from realtime.testing import PassThroughStage, SyntheticSource


def _engine_run(frames: int, width: int, height: int, hops: int, *, paced_fps: float | None, policy: Policy) -> dict[str, Any]:
    source = SyntheticSource(frames, width, height, fps=paced_fps or 60.0, distinct=False)
    stages = [PassThroughStage(f"hop{i}") for i in range(hops)]
    pipeline = Pipeline(CaptureStage(source, paced=paced_fps is not None), stages, [NullSink()], policy=policy, queue_size=2)
    t0 = time.perf_counter()
    pipeline.run()
    wall_s = time.perf_counter() - t0
    report = pipeline.stats.report()
    return {
        "hops": hops,
        "paced_fps": paced_fps,
        "frames": report["frames"]["done"],
        "dropped": sum(report["frames"]["dropped"].values()),
        "throughput_fps": report["throughput_fps"],
        "wall_s": round(wall_s, 3),
        "latency_ms": report["latency_ms"],
    }


def bench_engine(*, frames: int = 2000, width: int = 1920, height: int = 1080, hops: Sequence[int] = (0, 1, 4, 8), paced_fps: float = 60.0, paced_frames: int = 300) -> dict[str, Any]:
    unpaced = [_engine_run(frames, width, height, n, paced_fps=None, policy="block") for n in hops]
    paced = [_engine_run(paced_frames, width, height, n, paced_fps=paced_fps, policy="latest_wins") for n in hops]
    base, most = paced[0], paced[-1]
    span = most["hops"] - base["hops"]
    per_hop = {
        q: round((most["latency_ms"][q] - base["latency_ms"][q]) / span, 4) if span else None
        for q in ("p50", "p95", "p99")
    }
    return {
        "benchmark": "engine",
        "frame_size": f"{width}x{height}",
        "device": device_info(),
        "unpaced": unpaced,
        "paced": paced,
        "added_latency_per_hop_ms": per_hop,
    }


def format_engine_table(result: dict[str, Any]) -> str:
    lines = [f"engine benchmark, {result['frame_size']} frames, pass-through stages ({result['device']['cpu_count']} CPUs)"]
    lines.append(f"{'hops':>4} {'unpaced fps':>12} {'paced p50 ms':>13} {'p95 ms':>8} {'p99 ms':>8} {'drops':>6}")
    for u, p in zip(result["unpaced"], result["paced"], strict=True):
        lat = p["latency_ms"]
        lines.append(f"{u['hops']:>4} {u['throughput_fps'] or 0:>12.0f} {lat['p50']:>13.3f} {lat['p95']:>8.3f} {lat['p99']:>8.3f} {p['dropped']:>6}")
    per_hop = result["added_latency_per_hop_ms"]
    lines.append(f"added latency per queue hop: p50 {per_hop['p50']} ms, p95 {per_hop['p95']} ms, p99 {per_hop['p99']} ms")
    return "\n".join(lines)
