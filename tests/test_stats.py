import numpy as np
import pytest

from realtime.bundle import FrameBundle, StageTiming
from realtime.pipeline.stats import LatencyHistogram, StatsCollector


def test_histogram_percentiles_match_numpy_within_resolution():
    rng = np.random.default_rng(0)
    values = rng.lognormal(mean=2.0, sigma=0.6, size=20000)
    hist = LatencyHistogram()
    for v in values:
        hist.add(float(v))
    for q in (50, 95, 99):
        assert hist.percentile(q) == pytest.approx(np.percentile(values, q), rel=0.015)
    summary = hist.summary()
    assert summary["count"] == 20000
    assert summary["max"] == pytest.approx(values.max(), abs=1e-4)
    assert summary["mean"] == pytest.approx(values.mean(), abs=1e-4)


def test_histogram_handles_zero_and_empty():
    hist = LatencyHistogram()
    assert hist.summary() == {"count": 0}
    hist.add(0.0)
    assert hist.percentile(50) == 0.0
    assert sum(b[2] for b in hist.bins()) == 1


def test_collector_reads_stage_timings_on_primary_sink_only():
    stats = StatsCollector(primary_sink="a", total_frames=2)
    bundle = FrameBundle(0, t_capture_ns=0, frame=np.zeros((2, 2, 3), np.uint8), media_time_s=0.0)
    bundle.timings["capture"] = StageTiming(0.0, 1.0)
    bundle.timings["swap"] = StageTiming(0.5, 4.0)
    stats.frame_captured(bundle)
    stats.frame_written("b", bundle, 5_000_000, 6_000_000)
    stats.frame_written("a", bundle, 8_000_000, 10_000_000)
    report = stats.report({"x": 1})
    assert report["x"] == 1
    assert report["frames"]["done"] == 1
    assert report["stages"]["swap"]["process_ms"]["p50"] == pytest.approx(4.0, rel=0.01)
    assert report["latency_ms"]["p50"] == pytest.approx(10.0, rel=0.01)
    assert report["sinks"]["b"]["latency_ms"]["p50"] == pytest.approx(6.0, rel=0.01)
    assert "frame 1/2" in stats.status_line()


def test_report_keeps_the_slowest_frames_whole_and_which_frames_were_dropped():
    from realtime.pipeline.queues import FrameQueue

    stats = StatsCollector(primary_sink="a")
    queue = FrameQueue[FrameBundle]("track->swap", 1, "latest_wins")
    stats.queues = [queue]
    for frame_id in range(30):
        bundle = FrameBundle(frame_id, t_capture_ns=0, frame=np.zeros((2, 2, 3), np.uint8), media_time_s=0.0)
        bundle.timings["swap"] = StageTiming(0.0, float(frame_id))
        queue.put(bundle)  # capacity 1: every put after the first drops the frame before it
        stats.frame_captured(bundle)
        stats.frame_written("a", bundle, 0, (frame_id % 17 + 1) * 1_000_000)  # latency 1–17 ms
    report = stats.report()
    slowest = report["slowest_frames"]
    assert [e["latency_ms"] for e in slowest] == [17.0, 16.0, 15.0, 14.0, 13.0, 13.0, 12.0, 12.0, 11.0, 11.0]
    assert slowest[0]["frame"] == 16 and slowest[0]["stages"] == [["swap", 0.0, 16.0]]
    assert report["dropped_frame_ids"] == {"track->swap": list(range(29))}


def test_gc_pauses_count_real_collections_per_generation_and_keep_the_long_ones(monkeypatch):
    import gc
    import time

    from realtime.pipeline import gc_pauses
    from realtime.pipeline.gc_pauses import GcPauses

    monkeypatch.setattr(gc_pauses, "LONG_PAUSE_MS", 0.0)  # every pause counts as long: the list cannot stay empty
    pauses = GcPauses()
    origin = time.perf_counter_ns()
    pauses.start()
    gc.collect(0)
    gc.collect(2)
    junk = [[i] for i in range(300_000)]  # a full collection has this much to walk
    gc.collect(2)
    del junk
    pauses.stop()
    counted = list(pauses.count)
    gc.collect(2)  # after stop: not counted
    summary = pauses.summary(origin)
    assert summary["collections"] == counted
    assert summary["collections"][0] >= 1 and summary["collections"][2] >= 2  # allocating also triggers its own
    assert summary["pause_ms_max"][2] > 0 and summary["pause_ms_total"][2] >= summary["pause_ms_max"][2]
    assert len(summary["long_pauses"]) == min(sum(counted), gc_pauses.LONG_PAUSES_KEPT)
    assert {p["generation"] for p in summary["long_pauses"]} >= {0, 2}
    for pause in summary["long_pauses"]:
        assert pause["pause_ms"] >= 0.0 and pause["t_ms"] >= 0

