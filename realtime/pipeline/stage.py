"""Stage contracts and the thread loops that run them.

Subclasses write only ``process`` (or ``read`` for a source, ``write`` for a sink); the workers
here own queues, timing, stop and error reporting. Errors travel as data to the ``Supervisor``
(the pipeline), which is the one place that decides what a failure means.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

from realtime.bundle import FrameBundle, StageTiming
from realtime.pipeline.queues import END_OF_STREAM, EndOfStream, FrameQueue
from realtime.pipeline.thread_names import name_os_thread

# what the engine itself writes on every record: a stage may read these without a stage upstream
ENGINE_WRITES: tuple[str, ...] = ("t_enqueued_ns", "timings", "failed_stages")
POLL_S = 0.05  # how often an idle worker looks at the stop flag: stop lands well within 1 s


class Stage(ABC):
    """A step that transforms a frame record.

    ``setup`` and ``teardown`` run on the stage's own thread (heavy resources such as a CUDA
    context or a mediapipe graph belong to that thread); ``process`` gets every frame in order.
    """

    name: str = "stage"
    # The stage's contract with the frame record: the fields it reads and writes (``faces.x`` for a
    # field of each face). A test walks the wired stages and checks every read is written upstream.
    reads: ClassVar[tuple[str, ...]] = ()
    writes: ClassVar[tuple[str, ...]] = ()

    def setup(self) -> None:
        """Open heavy resources; raise a RealtimeError with a fix if that is impossible."""

    @abstractmethod
    def process(self, bundle: FrameBundle) -> FrameBundle:
        """Return the bundle with this stage's results added."""

    def teardown(self) -> None:
        """Release what ``setup`` opened; must not raise for a half-finished setup."""

    def describe(self) -> dict[str, object]:
        """What a report should say about this stage (backend, mode, counters)."""
        return {}


class SourceStage(ABC):
    """The first stage: makes frame records instead of transforming them."""

    name: str = "capture"
    reads: ClassVar[tuple[str, ...]] = ()  # a source makes the record
    writes: ClassVar[tuple[str, ...]] = ("frame_id", "t_capture_ns", "frame", "media_time_s", "timings")

    def setup(self) -> None:
        """Open the device or file on the capture thread."""

    @abstractmethod
    def read(self) -> FrameBundle | None:
        """The next frame, stamped at capture, or None at the end of the input."""

    def teardown(self) -> None:
        """Close the device or file."""

    def describe(self) -> dict[str, object]:
        """What a report should say about the input (frames read, damage found)."""
        return {}


class SinkStage(ABC):
    """A destination for finished frames (file, stream, virtual camera)."""

    name: str = "sink"

    def setup(self) -> None:
        """Open the destination."""

    @abstractmethod
    def write(self, bundle: FrameBundle) -> None:
        """Deliver one frame; raise SinkError when the destination fails."""

    def teardown(self, *, complete: bool) -> None:
        """Finalize; ``complete`` is False when the run ended in an error."""


class Supervisor(Protocol):
    """What workers report to: the pipeline."""

    stop_event: threading.Event

    def frame_failed(self, stage: str, bundle: FrameBundle, error: Exception) -> None: ...

    def frame_succeeded(self, stage: str) -> None: ...

    def fatal(self, stage: str, error: BaseException) -> None: ...

    def frame_captured(self, bundle: FrameBundle) -> None: ...

    def frame_written(self, sink: str, bundle: FrameBundle, t_start_ns: int, t_end_ns: int) -> None: ...

    def output_failed(self, sink: str, error: Exception) -> bool:
        """An output failed and asks to be dropped; True when the others go on without it."""
        ...

    @property
    def failed(self) -> bool: ...


class Worker(threading.Thread):
    """A daemon thread that runs setup, a loop, and teardown, reporting to the supervisor."""

    def __init__(self, name: str, supervisor: Supervisor) -> None:
        super().__init__(name=f"realtime-{name}", daemon=True)
        self.stage_name = name
        self.supervisor = supervisor
        self.ready = threading.Event()
        self.setup_error: BaseException | None = None
        self.go = threading.Event()
        # the frame this worker is inside, since when (perf_counter_ns; 0: between frames): read by
        # the slow-stage watch (pipeline/slow_stacks.py) from another thread, so set in one store each
        self.busy_frame = -1
        self.busy_since_ns = 0

    def run(self) -> None:
        name_os_thread(self.stage_name)
        try:
            self.setup()
        except BaseException as error:  # noqa: BLE001 - reported to the main thread
            self.setup_error = error
            self.ready.set()
            self._safe_teardown()
            return
        self.ready.set()
        try:
            while not self.go.wait(POLL_S):
                if self.supervisor.stop_event.is_set():
                    return
            if not self.supervisor.stop_event.is_set():
                self.loop()
        except BaseException as error:  # noqa: BLE001 - a worker must never die silently
            self.supervisor.fatal(self.stage_name, error)
        finally:
            self._safe_teardown()

    def _safe_teardown(self) -> None:
        try:
            self.teardown()
        except BaseException as error:  # noqa: BLE001
            self.supervisor.fatal(self.stage_name, error)

    def setup(self) -> None: ...

    def loop(self) -> None: ...

    def teardown(self) -> None: ...


class Observer(Protocol):
    """Something that watches a run from beside it (garbage collections, slow stages): started
    with the workers once they are ready, stopped after them; its summary goes into the report
    under ``key``. Observers are passed in: the engine itself measures only frames."""

    key: str

    def start(self, workers: Sequence[Any]) -> None: ...

    def stop(self) -> None: ...

    def summary(self, origin_ns: int) -> dict[str, Any]: ...


class Output(Protocol):
    """Where a worker puts its results: one queue, or a fan-out to several sinks."""

    def put(self, item: FrameBundle, stop: threading.Event | None = None) -> bool: ...

    def put_control(self, item: EndOfStream) -> None: ...


class SourceWorker(Worker):
    def __init__(self, source: SourceStage, output: Output, supervisor: Supervisor) -> None:
        super().__init__(source.name, supervisor)
        self.source = source
        self.output = output

    def setup(self) -> None:
        self.source.setup()

    def loop(self) -> None:
        stop = self.supervisor.stop_event
        try:
            while not stop.is_set():
                bundle = self.source.read()  # not watched: a read waits for the camera or the pace by design
                if bundle is None:
                    break
                self.supervisor.frame_captured(bundle)
                bundle.t_enqueued_ns = time.perf_counter_ns()
                if not self.output.put(bundle, stop):
                    break
        finally:
            self.output.put_control(END_OF_STREAM)

    def teardown(self) -> None:
        self.source.teardown()


class StageWorker(Worker):
    def __init__(
        self, stage: Stage, inbox: FrameQueue[FrameBundle], output: Output, supervisor: Supervisor
    ) -> None:
        super().__init__(stage.name, supervisor)
        self.stage = stage
        self.inbox = inbox
        self.output = output

    def setup(self) -> None:
        self.stage.setup()

    def loop(self) -> None:
        stop = self.supervisor.stop_event
        try:
            while not stop.is_set():
                item = self.inbox.get(POLL_S)
                if item is None:
                    continue
                if isinstance(item, EndOfStream):
                    break
                result = self._process(item)
                result.t_enqueued_ns = time.perf_counter_ns()
                if not self.output.put(result, stop):
                    break
        finally:
            self.output.put_control(END_OF_STREAM)

    def _process(self, bundle: FrameBundle) -> FrameBundle:
        t_start_ns = time.perf_counter_ns()
        wait_ms = (t_start_ns - bundle.t_enqueued_ns) / 1e6
        self.busy_frame, self.busy_since_ns = bundle.frame_id, t_start_ns
        try:
            result = self.stage.process(bundle)
            self.supervisor.frame_succeeded(self.stage.name)
        except Exception as error:  # noqa: BLE001 - the frame passes through unchanged
            self.supervisor.frame_failed(self.stage.name, bundle, error)
            bundle.failed_stages.append(self.stage.name)
            result = bundle
        finally:
            self.busy_since_ns = 0
        t_end_ns = time.perf_counter_ns()
        result.timings[self.stage.name] = StageTiming(wait_ms, (t_end_ns - t_start_ns) / 1e6)
        return result

    def teardown(self) -> None:
        self.stage.teardown()


class SinkWorker(Worker):
    """Writes frames to one sink. With ``drop_on_error`` a sink that fails is closed (as incomplete)
    and dropped while the other outputs go on; its queue is still emptied, so the fan-out never
    waits on it."""

    def __init__(self, sink: SinkStage, inbox: FrameQueue[FrameBundle], supervisor: Supervisor, *, drop_on_error: bool = False) -> None:
        super().__init__(sink.name, supervisor)
        self.sink = sink
        self.inbox = inbox
        self.opened = False
        self.drop_on_error = drop_on_error
        self.dropped = False

    def setup(self) -> None:
        self.sink.setup()
        self.opened = True

    def loop(self) -> None:
        stop = self.supervisor.stop_event
        while not stop.is_set():
            item = self.inbox.get(POLL_S)
            if item is None:
                continue
            if isinstance(item, EndOfStream):
                return
            t_start_ns = time.perf_counter_ns()
            self.busy_frame, self.busy_since_ns = item.frame_id, t_start_ns
            try:
                if not item.wait_for_frame(stop):  # a frame kept on the GPU is still on its way back
                    return  # stopped while waiting: never write a frame that did not arrive
                self.sink.write(item)
            except Exception as error:
                if not self.drop_on_error or not self.supervisor.output_failed(self.sink.name, error):
                    raise
                self._drop()
                return
            finally:
                self.busy_since_ns = 0
            self.supervisor.frame_written(self.sink.name, item, t_start_ns, time.perf_counter_ns())

    def _drop(self) -> None:
        """Close the failed sink now, then keep emptying its queue until the end of the stream."""
        self.dropped = True
        self.opened = False
        try:
            self.sink.teardown(complete=False)
        except Exception as error:  # noqa: BLE001 - already failed: its closing error is only logged
            self.supervisor.output_failed(self.sink.name, error)
        stop = self.supervisor.stop_event
        while not stop.is_set():
            if isinstance(self.inbox.get(POLL_S), EndOfStream):
                return

    def teardown(self) -> None:
        if self.opened:
            self.sink.teardown(complete=not self.supervisor.failed)
