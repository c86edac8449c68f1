"""The gate that keeps graph captures apart from the stages' GPU work (threads, no GPU needed)."""

import threading
import time

from realtime.gpu.gate import GpuGate


def _in_thread(target) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_frame_work_overlaps_but_a_capture_waits_for_it_and_holds_new_work_back():
    gate, events = GpuGate(), []
    inside, release = threading.Event(), threading.Event()

    def frame_work(name):
        with gate.shared():
            events.append(f"{name} in")
            inside.set()
            release.wait(5)
            events.append(f"{name} out")

    first = _in_thread(lambda: frame_work("a"))
    inside.wait(5)
    with gate.shared():  # a second share does not wait for the first
        events.append("b in")

    def capture():
        with gate.exclusive():
            events.append("capture")
            time.sleep(0.05)
            events.append("capture done")

    capturer = _in_thread(capture)
    time.sleep(0.05)
    assert "capture" not in events  # a's work is still under way
    late = _in_thread(lambda: frame_work("c"))
    time.sleep(0.05)
    release.set()
    for thread in (first, capturer, late):
        thread.join(5)
    assert events.index("a out") < events.index("capture") < events.index("capture done") < events.index("c in")


def test_the_capturing_thread_may_hold_a_share_and_re_enter():
    gate, other_in = GpuGate(), threading.Event()
    with gate.shared():
        with gate.exclusive():
            with gate.exclusive(), gate.shared():  # its own frame work inside its capture: no deadlock
                other = _in_thread(lambda: (gate.shared().__enter__(), other_in.set()))
                assert not other_in.wait(0.1)  # another thread's work waits for the capture
        assert other_in.wait(2)  # and starts once the capture is over
    other.join(2)


def test_an_error_inside_a_capture_opens_the_gate_again():
    gate = GpuGate()
    try:
        with gate.exclusive():
            raise RuntimeError("capture failed")
    except RuntimeError:
        pass
    done = threading.Event()
    _in_thread(lambda: (gate.shared().__enter__(), done.set()))
    assert done.wait(2)


def test_registered_streams_report_busy_or_idle_and_a_new_stage_replaces_its_entry(monkeypatch):
    from realtime.gpu import gate as gpu_gate
    from realtime.gpu.gate import register_stream, stream_states

    monkeypatch.setattr(gpu_gate, "_STREAMS", {})  # the fakes must not outlive this test (a stall later would query them)

    class FakeStream:
        def __init__(self, idle: bool) -> None:
            self.idle = idle

        def query(self) -> bool:
            return self.idle

    swap, blend = FakeStream(False), FakeStream(True)
    register_stream("test-swap", swap)
    register_stream("test-blend", blend)
    states = stream_states()
    assert states["test-swap"] == "busy" and states["test-blend"] == "idle"
    register_stream("test-swap", FakeStream(True))  # the next run's swap stage
    assert stream_states()["test-swap"] == "idle"
