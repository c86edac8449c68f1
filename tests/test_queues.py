import threading
import time

import numpy as np
import pytest

from realtime.bundle import FrameBundle
from realtime.pipeline.queues import DROPPED_IDS_KEPT, END_OF_STREAM, FrameQueue
from realtime.pipeline.stats import StatsCollector


def test_block_keeps_order_and_loses_nothing():
    q = FrameQueue[int]("q", 2, "block")
    received = []

    def consume():
        while True:
            item = q.get(1.0)
            if item is END_OF_STREAM:
                return
            received.append(item)
            time.sleep(0.001)

    consumer = threading.Thread(target=consume)
    consumer.start()
    for i in range(100):
        assert q.put(i)
    q.put_control(END_OF_STREAM)
    consumer.join(5)
    assert received == list(range(100))
    assert q.drops == 0
    assert q.peak_depth <= 2


def test_latest_wins_drops_oldest_and_counts():
    q = FrameQueue[int]("q", 2, "latest_wins")
    for i in range(5):
        q.put(i)
    assert q.drops == 3
    assert [q.get(0.1), q.get(0.1)] == [3, 4]
    assert q.get(0.01) is None


def test_end_of_stream_at_the_head_is_never_dropped_and_keeps_its_place():
    """A full latest-wins queue drops its oldest *frame*: an end-of-stream marker at the head (a
    stage that ended while frames still came behind it) stays first, and the newest frame stays."""
    q = FrameQueue[int]("q", 1, "latest_wins")
    q.put_control(END_OF_STREAM)  # at the head
    q.put(1)
    q.put(2)  # full: drops 1, the oldest frame, not the marker ahead of it
    assert q.drops == 1 and q.depth() == 1
    assert q.get(0.1) is END_OF_STREAM
    assert q.get(0.1) == 2
    assert q.get(0.01) is None


def test_end_of_stream_between_frames_keeps_its_place_when_frames_are_dropped():
    q = FrameQueue[int]("q", 2, "latest_wins")
    q.put(1)
    q.put_control(END_OF_STREAM)
    q.put(2)
    q.put(3)  # full: drops 1
    q.put(4)  # drops 2, the oldest frame left, from behind the marker
    assert q.drops == 2 and list(q.dropped_ids) == []  # ints carry no frame id
    assert [q.get(0.1), q.get(0.1), q.get(0.1)] == [END_OF_STREAM, 3, 4]


def test_blocking_put_gives_up_when_stopped():
    q = FrameQueue[int]("q", 1, "block")
    q.put(1)
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    t0 = time.monotonic()
    assert q.put(2, stop) is False
    assert time.monotonic() - t0 < 10.0  # a put that ignored the stop would block for ever; the bound is loose for a busy box


def test_get_times_out():
    q = FrameQueue[int]("q", 1, "block")
    t0 = time.monotonic()
    assert q.get(0.05) is None
    assert time.monotonic() - t0 >= 0.04


def test_capacity_must_be_positive():
    with pytest.raises(ValueError):
        FrameQueue[int]("q", 0, "block")


def _bundle(frame_id: int) -> FrameBundle:
    return FrameBundle(frame_id=frame_id, t_capture_ns=0, frame=np.zeros((2, 2, 3), np.uint8), media_time_s=frame_id / 30)


def test_run_report_names_the_dropped_frames_and_counts_each_queue():
    """What a user reads after a live run that fell behind: which queue dropped how many frames,
    the ids of the latest dropped ones (to find them in the recording), and each queue's traffic.
    A queue no frame reached reports nothing queued."""
    live = FrameQueue[FrameBundle]("capture->swap", 2, "latest_wins")
    idle = FrameQueue[FrameBundle]("swap->output", 2, "block")
    stats = StatsCollector()
    stats.watch_queues([live, idle])
    frames = DROPPED_IDS_KEPT + 100
    for frame_id in range(frames + 2):
        live.put(_bundle(frame_id))
    report = stats.report()
    assert report["frames"]["dropped"] == {"capture->swap": frames, "swap->output": 0}
    # the newest DROPPED_IDS_KEPT drops, oldest first; the two frames still queued are not among them
    assert report["dropped_frame_ids"] == {"capture->swap": list(range(100, frames))}
    assert report["queues"] == {
        "capture->swap": {"capacity": 2, "policy": "latest_wins", "peak_depth": 2, "puts": frames + 2},
        "swap->output": {"capacity": 2, "policy": "block", "peak_depth": 0, "puts": 0},
    }


def test_latest_wins_stays_within_capacity_after_frames_are_taken():
    """Latency stays bounded only if the queue never holds more than its capacity, also after a
    consumer has taken some frames: a slow stage must then get the newest frames, not a backlog."""
    q = FrameQueue[int]("q", 3, "latest_wins")
    for i in range(3):
        q.put(i)
    assert q.get(0.1) == 0
    assert q.depth() == 2
    for i in range(3, 10):
        q.put(i)
    assert q.depth() == 3
    assert [q.get(0.1) for _ in range(3)] == [7, 8, 9]
    assert q.get(0.01) is None and q.depth() == 0
