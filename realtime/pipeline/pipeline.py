"""Wiring: a source, a chain of stages, and several sinks, each on its own thread.

The pipeline is also the supervisor: workers report failures here and this is the one place that
applies the failure policy. Startup is two-phase: every worker opens its resources on its own
thread, and only when all are ready does the source start, so a missing camera or an unwritable
file fails before the first frame and the first frame's latency is not a cold start.
"""

from __future__ import annotations

import gc
import logging
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from realtime.bundle import FrameBundle
from realtime.errors import RealtimeError, StageError, StallError
from realtime.pipeline.queues import EndOfStream, FrameQueue, Policy
from realtime.pipeline.signals import STOP_SIGNALS
from realtime.pipeline.slow_stacks import named_stacks
from realtime.pipeline.stage import (
    Observer,
    Output,
    SinkStage,
    SinkWorker,
    SourceStage,
    SourceWorker,
    Stage,
    StageWorker,
    Worker,
)
from realtime.pipeline.stats import StatsCollector

log = logging.getLogger("realtime")


class FanOut:
    """Hands each frame to every sink's own queue, so one slow sink cannot stall the others."""

    def __init__(self, queues: Sequence[FrameQueue[FrameBundle]]) -> None:
        self.queues = list(queues)

    def put(self, item: FrameBundle, stop: threading.Event | None = None) -> bool:
        return all([q.put(item, stop) for q in self.queues])

    def put_control(self, item: EndOfStream) -> None:
        for q in self.queues:
            q.put_control(item)


@dataclass(frozen=True)
class FailurePolicy:
    """What repeated per-frame failures mean: keep passing frames through, or stop."""

    on_error: str = "passthrough"
    max_consecutive_failures: int = 30


@dataclass(frozen=True)
class RunResult:
    frames_done: int
    interrupted: bool
    stuck_threads: tuple[str, ...]
    signal: int | None = None  # the signal that stopped the run (SIGINT, SIGTERM, SIGHUP), if any


STOP_DEADLINE_S = 1.0  # after a stop request every thread gets this long; outputs finalize within it
SINK_CLOSE_S = 5.0  # a stop during set-up: how long an output still opening may take to close again


BUSY_CPU_SHARE = 0.1  # of one core: a process computing this much is working, not stuck (a waiting one uses ~0.01)


def stall_cause(stage: str | None, gpu: bool) -> str:
    """What most likely holds a stuck ``stage``, in words a user can act on."""
    if stage is None:
        return "frames stopped moving between stages, which is a bug"
    if stage in ("swap", "blend") and gpu:
        return f"the {stage} stage waits on the GPU (a stuck GPU or driver)"
    if stage == "capture":
        return "the input stopped delivering frames (a stuck camera or device)"
    if stage.startswith(("file:", "stream:", "vcam", "null")):
        return f"the output {stage} stopped taking frames (a stuck disk, network or virtual camera)"
    return f"the {stage} stage is blocked (waiting on a lock, a device or a library)"


class Pipeline:
    """source → stages… → sinks, joined by bounded queues."""

    def __init__(
        self,
        source: SourceStage,
        stages: Sequence[Stage],
        sinks: Sequence[SinkStage],
        *,
        policy: Policy,
        queue_size: int = 2,
        sink_policies: Sequence[Policy] | None = None,
        sink_queue_size: int = 4,
        failure_policy: FailurePolicy = FailurePolicy(),
        stats: StatsCollector | None = None,
        gil_switch_s: float | None = None,
        start_timeout_s: float = 300.0,
        stall_timeout_s: float | None = None,
        observers: Sequence[Observer] = (),
        drop_failed_outputs: bool = False,
        device_streams: Callable[[], dict[str, str]] | None = None,
    ) -> None:
        if not sinks:
            raise ValueError("a pipeline needs at least one sink")
        self.stop_event = threading.Event()
        self.stats = stats or StatsCollector(primary_sink=sinks[0].name)
        self.failure_policy = failure_policy
        self.gil_switch_s = gil_switch_s
        self.start_timeout_s = start_timeout_s
        self.stall_timeout_s = stall_timeout_s
        # what accelerator work each named stream still has queued (passed in: the engine knows no GPU)
        self.device_streams = device_streams
        self.stats.observers = list(observers)
        # ((frames accounted for, stage steps), when that last changed, process CPU seconds then)
        self._progress: tuple[tuple[int, int], float, float] = ((-1, -1), 0.0, 0.0)
        self._steps = 0  # frames any stage finished (an approximate count: only its change matters)
        self._fatal: BaseException | None = None
        self._fatal_stage: str | None = None
        self._lock = threading.Lock()
        self._consecutive: Counter[str] = Counter()
        self._logged_kinds: set[str] = set()
        self._gave_up: set[str] = set()

        self.source = source
        self.stages = list(stages)
        self.sinks = list(sinks)
        sink_policies = list(sink_policies or [policy] * len(sinks))
        names = [s.name for s in sinks]
        if len(set(names)) != len(names):
            raise ValueError(f"sink names must be unique: {names}")
        self.queues: list[FrameQueue[FrameBundle]] = []
        inboxes: list[FrameQueue[FrameBundle]] = []
        previous = source.name
        for stage in stages:
            q: FrameQueue[FrameBundle] = FrameQueue(f"{previous}->{stage.name}", queue_size, policy)
            inboxes.append(q)
            previous = stage.name
        sink_queues = [
            FrameQueue[FrameBundle](f"{previous}->{sink.name}", sink_queue_size, sink_policy)
            for sink, sink_policy in zip(sinks, sink_policies, strict=True)
        ]
        self.queues = inboxes + sink_queues
        self.stats.watch_queues(self.queues)

        fan_out = FanOut(sink_queues)
        outputs: list[Output] = [*inboxes, fan_out]
        self.workers: list[Worker] = [SourceWorker(source, outputs[0], self)]
        for index, stage in enumerate(stages):
            self.workers.append(StageWorker(stage, inboxes[index], outputs[index + 1], self))
        for sink, q in zip(sinks, sink_queues, strict=True):
            self.workers.append(SinkWorker(sink, q, self, drop_on_error=drop_failed_outputs))
        self.dropped_outputs: dict[str, str] = {}

    # --- supervisor interface (called from worker threads) -------------------------------------

    @property
    def failed(self) -> bool:
        return self._fatal is not None

    @property
    def fatal_error(self) -> BaseException | None:
        return self._fatal

    def frame_captured(self, bundle: FrameBundle) -> None:
        self._steps += 1
        self.stats.frame_captured(bundle)

    def frame_written(self, sink: str, bundle: FrameBundle, t_start_ns: int, t_end_ns: int) -> None:
        self._steps += 1
        self.stats.frame_written(sink, bundle, t_start_ns, t_end_ns)

    def output_failed(self, sink: str, error: Exception) -> bool:
        """``--on-output-error drop``: the failed output goes, the others go on; never the last one."""
        with self._lock:
            if sink in self.dropped_outputs:
                log.warning("output %s, already dropped: %s", sink, error)
                return True
            others = [w.stage_name for w in self.workers if isinstance(w, SinkWorker) and w.stage_name != sink and w.stage_name not in self.dropped_outputs]
            if not others:
                return False
            self.dropped_outputs[sink] = f"{type(error).__name__}: {error}"
            if self.stats.primary_sink == sink:
                self.stats.primary_sink = others[0]
        log.error("output %s failed (%s) and was dropped; %s go on (--on-output-error drop)", sink, error, ", ".join(others))
        return True

    def frame_succeeded(self, stage: str) -> None:
        self._steps += 1
        if self._consecutive[stage]:
            with self._lock:
                if stage in self._gave_up:
                    log.info("%s: frames are succeeding again", stage)
                    self._gave_up.discard(stage)
                self._consecutive[stage] = 0

    def frame_failed(self, stage: str, bundle: FrameBundle, error: Exception) -> None:
        self._steps += 1
        self.stats.frame_failed(stage, error)
        kind = f"{stage}: {type(error).__name__}"
        with self._lock:
            self._consecutive[stage] += 1
            consecutive = self._consecutive[stage]
            first_of_kind = kind not in self._logged_kinds
            self._logged_kinds.add(kind)
        if first_of_kind:
            log.warning(
                "%s failed on frame %d (%s: %s); the frame passes through unchanged "
                "(further failures of this kind are counted, not logged)",
                stage, bundle.frame_id, type(error).__name__, error,
            )
        if consecutive == self.failure_policy.max_consecutive_failures:
            if self.failure_policy.on_error == "stop":
                self.fatal(
                    stage,
                    StageError(
                        f"{stage} failed on {consecutive} frames in a row (last: {error})",
                        "fix the cause above, or run with --on-error passthrough to keep going",
                    ),
                )
            else:
                with self._lock:
                    self._gave_up.add(stage)
                log.warning("%s failed on %d frames in a row; still passing frames through", stage, consecutive)

    def fatal(self, stage: str, error: BaseException) -> None:
        with self._lock:
            if self._fatal is None:
                self._fatal = error
                self._fatal_stage = stage
        self.stop_event.set()

    # --- control (main thread) ------------------------------------------------------------------

    def start(self, ready_timeout_s: float | None = None) -> None:
        """Start all threads, wait until each has opened its resources, then let frames flow."""
        ready_timeout_s = self.start_timeout_s if ready_timeout_s is None else ready_timeout_s
        self.stats.t_setup_start_ns = time.perf_counter_ns()
        for worker in self.workers:
            worker.start()
        deadline = time.monotonic() + ready_timeout_s
        for worker in self.workers:
            try:
                ready = worker.ready.wait(max(0.0, deadline - time.monotonic()))
            except BaseException:  # a signal during set-up: close what is open, then let it go on
                self.stop()
                self.join(timeout_s=STOP_DEADLINE_S)
                for sink_worker in self.workers:  # an output opens fast and must close its file
                    if isinstance(sink_worker, SinkWorker):
                        sink_worker.join(SINK_CLOSE_S)
                raise
            if not ready:
                self.stop()
                self.join()
                raise StageError(
                    f"{worker.stage_name} did not start within {ready_timeout_s:.0f} s",
                    "a first start compiles the generator: run 'realtime build-engines' once, raise --start-timeout-s, or run 'realtime doctor'",
                )
        errors = [(w.stage_name, w.setup_error) for w in self.workers if w.setup_error is not None]
        if errors:
            self.stop()
            self.join()
            name, error = errors[0]
            if isinstance(error, RealtimeError):
                raise error
            raise StageError(f"{name} could not start ({type(error).__name__}: {error})", "run with --debug for details") from error
        # Everything set-up made (models, libraries: millions of objects) moves out of the
        # collector's reach: a full collection then walks only what frames create, so it no
        # longer stalls every thread for tens of milliseconds in the middle of a run.
        gc.collect()
        gc.freeze()
        for observer in self.stats.observers:
            observer.start(self.workers)
        self.stats.t_start_ns = time.perf_counter_ns()
        for worker in self.workers:
            worker.go.set()

    def stop(self) -> None:
        self.stop_event.set()

    def _watch_for_stall(self, now: float) -> bool:
        """A fatal error when the pipeline is stuck, not merely slow: no stage has finished a frame
        (and none came out) for ``stall_timeout_s`` while frames are in flight, and, on a run with
        no GPU stream, the process has not been computing either (a CPU generator on a loaded
        machine can spend that long on a frame: that is slow, and it is left to finish). On the
        stuck GPU leaves every thread waiting for ever and the output frozen. The stuck stage
        is named and every thread's stack goes to the log: that is what shows where."""
        if not self.stall_timeout_s or self._fatal is not None:
            return False
        accounted = self.stats.frames_done + sum(self.stats.drops().values())
        progress = (accounted, self._steps)
        cpu_s = time.process_time()
        if progress != self._progress[0] or self.stats.captured <= accounted:
            self._progress = (progress, now, cpu_s)
            return False
        stalled_s = now - self._progress[1]
        if stalled_s < self.stall_timeout_s:
            return False
        states = self.device_streams() if self.device_streams is not None else {}
        computing = (cpu_s - self._progress[2]) / stalled_s > BUSY_CPU_SHARE
        if computing and not states:
            self._progress = (progress, now, cpu_s)  # slow, not stuck: look again after another timeout
            log.warning("no frame finished for %.0f s, but the process is computing (a slow CPU?): waiting on", stalled_s)
            return False
        in_flight = self.stats.captured - accounted
        stage, where = self._stuck_stage()
        cause = stall_cause(stage, bool(states))
        log.error("the pipeline stalled: %s; %d frames in flight; every thread's stack follows\n%s", where, in_flight, named_stacks())
        if states:
            log.error("device streams: %s", ", ".join(f"{name} {state}" for name, state in states.items()))
        self.fatal("pipeline", StallError(
            f"the pipeline stalled: {where}, no frame came out for {stalled_s:.0f} s",
            f"{cause}; the stacks above show where: rerun, and report it with them if it recurs (--stall-timeout-s 0 turns this check off)",
        ))
        return True

    def _stuck_stage(self) -> tuple[str | None, str]:
        """The worker inside one frame the longest, and a phrase saying so."""
        now_ns = time.perf_counter_ns()
        busy = [(w.busy_since_ns, w) for w in self.workers if w.busy_since_ns]
        if not busy:
            return None, "no stage is working on a frame (every stage waits on its queue)"
        since, worker = min(busy, key=lambda item: item[0])
        return worker.stage_name, f"the {worker.stage_name} stage has been on frame {worker.busy_frame} for {(now_ns - since) / 1e9:.0f} s"

    def done(self) -> bool:
        return not any(w.is_alive() for w in self.workers)

    def _sinks_done(self) -> bool:
        """Every output has finished (and finalized its file): what a stop must wait for."""
        return not any(w.is_alive() for w in self.workers if isinstance(w, SinkWorker))

    def join(self, timeout_s: float = 2.0) -> tuple[str, ...]:
        """Wait for every thread; returns the names of any still running after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        for worker in self.workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        for observer in self.stats.observers:
            observer.stop()
        gc.unfreeze()  # start() froze the set-up objects; hand them back to the collector
        return tuple(w.stage_name for w in self.workers if w.is_alive())

    def run(self, on_tick: Callable[[], None] | None = None, tick_s: float = 1.0) -> RunResult:
        """Start, wait for the end of the input (or Ctrl-C, or a fatal error), finalize.

        Raises the fatal error, if any, after every sink has been finalized.
        """
        # A stage thread returning from the GPU, the decoder or a queue wait must take the
        # interpreter lock back from whichever thread holds it, which Python makes wait up to its
        # switch interval (5 ms): per hop and per frame that was most of the pipeline's latency.
        previous_switch = sys.getswitchinterval()
        if self.gil_switch_s is not None:
            sys.setswitchinterval(self.gil_switch_s)
        try:
            return self._run(on_tick, tick_s)
        finally:
            sys.setswitchinterval(previous_switch)

    def _run(self, on_tick: Callable[[], None] | None, tick_s: float) -> RunResult:
        interrupted = threading.Event()
        t_requested: list[float] = []

        stop_signal: list[int] = []

        def on_signal(signum: int, _frame: object) -> None:
            if interrupted.is_set():
                raise KeyboardInterrupt  # a second Ctrl-C: the user really wants out
            interrupted.set()
            stop_signal.append(signum)
            t_requested.append(time.monotonic())
            log.info("stopping (%s)", signal.Signals(signum).name)
            self.stop()

        # Ctrl-C, a service manager's SIGTERM and a closed terminal's SIGHUP become a stop request
        # instead of an exception that could land anywhere; only the main thread may install handlers.
        handled = STOP_SIGNALS
        previous = {}
        if threading.current_thread() is threading.main_thread():
            previous = {sig: signal.signal(sig, on_signal) for sig in handled}
        try:  # the handlers first: a Ctrl-C while the stages set up is a stop, not lost or an exception
            self.start()
        except BaseException:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            raise
        next_tick = time.monotonic() + tick_s
        try:
            while not self.done():
                time.sleep(0.02)
                if t_requested and time.monotonic() - t_requested[0] > STOP_DEADLINE_S and self._sinks_done():
                    break  # a stage still inside a long frame (a CPU generator) is not waited for
                if self._watch_for_stall(time.monotonic()):
                    break  # the stuck thread will not return: finish without it
                if on_tick is not None and time.monotonic() >= next_tick:
                    next_tick += tick_s
                    on_tick()
        except KeyboardInterrupt:
            interrupted.set()
            self.stop()
        except BaseException as error:  # noqa: BLE001 - a failure on this thread (a tick's callback) is the run's
            self.fatal("main", error)  # the sinks see a failed run: partial outputs are kept as such
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        stuck = self.join(timeout_s=max(0.05, STOP_DEADLINE_S - (time.monotonic() - t_requested[0])) if t_requested else (STOP_DEADLINE_S if interrupted.is_set() else 5.0))
        if stuck:
            log.warning("threads still running after stop: %s", ", ".join(stuck))
        elif t_requested:
            log.info("all threads stopped %.2f s after the request; outputs finalized", time.monotonic() - t_requested[0])
        if self._fatal is not None:
            raise self._fatal
        return RunResult(self.stats.frames_done, interrupted.is_set(), stuck, stop_signal[0] if stop_signal else None)
