"""Builds and runs a pipeline from a ``Config``: the one place that decides pacing, queue policy
and which stages and sinks a run gets. ``cli.py`` calls this; tests and scripts can too."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from realtime.config import COVERING, Config, resolve_face_safety, resolve_others
from realtime.errors import ConfigError
from realtime.gpu.gate import stream_states
from realtime.io.sinks import FileSink, SinkSpec, make_sinks, parse_sink_spec
from realtime.io.sources import SourceInfo, VideoSource, classify_input, open_source
from realtime.pipeline.gc_pauses import GcPauses
from realtime.pipeline.pipeline import FailurePolicy, Pipeline, RunResult
from realtime.pipeline.queues import Policy
from realtime.pipeline.slow_stacks import SlowStageWatch
from realtime.pipeline.stage import Observer, SinkStage, Stage
from realtime.pipeline.stats import StatsCollector
from realtime.report import check_report_path, process_cpu_seconds, resource_usage, run_metadata, write_report
from realtime.stages.capture import CaptureStage

log = logging.getLogger("realtime")


@dataclass(frozen=True)
class Plan:
    """The decisions ``auto`` options resolve to, recorded in reports."""

    paced: bool
    policy: Policy
    sink_policies: tuple[Policy, ...]


def resolve_outputs(config: Config, *, required: bool = True) -> list[SinkSpec]:
    """Parse ``--output``; a camera with no output goes to the virtual camera, as a streamer expects."""
    specs = [parse_sink_spec(text) for text in config.output.output]
    if not specs and required:
        if classify_input(config.capture.input).kind == "camera":
            return [SinkSpec("vcam", "")]
        raise ConfigError("no output given", "add --output out.mp4, --output vcam, --output udp://127.0.0.1:5000 or --output null")
    return specs


def plan_run(config: Config, info: SourceInfo, specs: Sequence[SinkSpec]) -> Plan:
    """Resolve pacing and queue policies.

    Live inputs and paced files behave like a camera: latest-wins everywhere, so latency stays
    bounded. Unpaced files are batch work: every queue blocks and nothing is lost.
    """
    live_output = any(s.kind in ("vcam", "stream") for s in specs)
    pace = config.capture.pace
    if info.live:
        paced = False  # a camera or stream paces itself
    elif pace == "auto":
        paced = live_output or config.capture.loop
    else:
        paced = pace == "native"
    if config.pipeline.queue_policy != "auto":
        policy: Policy = config.pipeline.queue_policy
    else:
        policy = "latest_wins" if (info.live or paced) else "block"
    # A live sink never holds the pipeline back; a file sink follows the pipeline's policy.
    sink_policies = tuple("latest_wins" if s.kind in ("vcam", "stream", "null") and policy == "latest_wins" else policy for s in specs)
    return Plan(paced, policy, sink_policies)  # type: ignore[arg-type]


def face_stages(config: Config, plan: Plan, frame_size: tuple[int, int] | None = None) -> list[Stage]:
    """Detect and track, when faces are on; async detection for live input unless told otherwise."""
    if not config.detect.faces:
        return []
    from realtime.stages.detect import DetectStage
    from realtime.stages.track import TrackStage

    mode = config.detect.detect_mode
    asynchronous = plan.policy == "latest_wins" if mode == "auto" else mode == "async"
    safety = resolve_face_safety(config.safety.face_safety, live=plan.policy == "latest_wins") if config.swap.generator else "reveal"
    cover_lost_s = config.safety.cover_lost_s if safety in COVERING else None
    others = resolve_others(config.safety.others, safety)
    stages: list[Stage] = [DetectStage(config.detect, asynchronous=asynchronous), TrackStage(config.track, cover_lost_s=cover_lost_s)]
    if config.swap.generator:
        from realtime.live import LiveSettings
        from realtime.stages.blend import BlendStage, resolve_blend_device
        from realtime.stages.swap import SwapStage

        blend_device = resolve_blend_device(config.blend.blend_device)
        frames = None
        if config.pipeline.device_frames and blend_device == "cuda":
            from realtime.gpu.frames import DeviceFrames

            frames = DeviceFrames("cuda")  # the swap stage turns it off if its generator is not on the GPU
        settings = LiveSettings(config.blend, config.swap)  # shared: the swap reads who wears what, the blend the privacy switch
        blend = BlendStage(
            settings, device=blend_device, crop_size=config.track.crop_px, frame_size=frame_size,
            engines_dir=config.swap.engines_dir, face_safety=safety, hold_s=config.safety.cover_lost_s, others=others,
            generator_mask=bool(config.swap.occluder or config.swap.parser),
        )
        stages += [SwapStage(config.swap, config.track, config.detect, frames=frames, settings=settings, others=others), blend]
    return stages


def device_frames_of(stages: Sequence[Stage]) -> Any:
    """The frame uploader (``DeviceFrames``) a stage exposes as ``frames``, if any: the capture
    stage feeds it. Looked up by attribute so a pipeline without faces never imports torch."""
    return next((getattr(s, "frames") for s in stages if getattr(s, "frames", None) is not None), None)  # noqa: B009


SinkFactory = Callable[[SourceInfo], SinkStage]


def run_observers(config: Config) -> list[Observer]:
    """What watches a run from beside it: garbage collections always, slow stages on request."""
    observers: list[Observer] = [GcPauses()]
    if config.pipeline.slow_stage_ms:
        observers.append(SlowStageWatch(config.pipeline.slow_stage_ms))
    return observers


def build_pipeline(
    config: Config,
    source: VideoSource,
    specs: Sequence[SinkSpec],
    stages: Sequence[Stage] | None = None,
    extra_sinks: Sequence[SinkFactory] = (),
    side_sinks: Sequence[SinkStage] = (),
) -> tuple[Pipeline, Plan]:
    """Wire capture → stages → sinks; ``stages`` defaults to the face stages the config asks for.
    ``side_sinks`` (the panel's preview) come last, on latest-wins queues: they never hold a frame."""
    plan = plan_run(config, source.info, specs)
    if stages is None:
        stages = face_stages(config, plan, (source.info.width, source.info.height))
    sinks = [factory(source.info) for factory in extra_sinks] + make_sinks(specs, source.info, config.output) + list(side_sinks)
    latest: Policy = "latest_wins"
    sink_policies = (plan.policy,) * len(extra_sinks) + plan.sink_policies + (latest,) * len(side_sinks)
    total = source.info.total_frames
    if config.capture.max_frames is not None:
        total = min(total, config.capture.max_frames) if total else config.capture.max_frames
    stats = StatsCollector(primary_sink=sinks[0].name, total_frames=total)
    capture = CaptureStage(source, paced=plan.paced, max_frames=config.capture.max_frames, uploader=device_frames_of(stages))
    pipeline = Pipeline(
        capture,
        stages,
        sinks,
        policy=plan.policy,
        queue_size=config.pipeline.queue_size,
        sink_policies=sink_policies,
        sink_queue_size=config.output.sink_queue,
        failure_policy=FailurePolicy(config.pipeline.on_error, config.pipeline.max_consecutive_failures),
        stats=stats,
        gil_switch_s=config.pipeline.gil_switch_ms / 1000.0,
        start_timeout_s=config.pipeline.start_timeout_s,
        stall_timeout_s=config.pipeline.stall_timeout_s or None,
        observers=run_observers(config),
        drop_failed_outputs=config.output.on_output_error == "drop",
        device_streams=stream_states,
    )
    return pipeline, plan


def run(
    config: Config,
    stages: Sequence[Stage] | None = None,
    *,
    extra_sinks: Sequence[SinkFactory] = (),
    extra_meta: dict[str, Any] | None = None,
) -> tuple[RunResult | None, dict[str, Any]]:
    """Open the input and outputs, run to the end (or Ctrl-C), write the report; returns both."""
    if config.swap.generator:  # generators loads torch, which a run without a generator never needs
        from realtime.generators import resolve_crop_size

        config = resolve_crop_size(config)
    specs = resolve_outputs(config, required=not extra_sinks)
    if config.stats.report:
        check_report_path(Path(config.stats.report))  # before anything opens, not after the run
    if config.control.control:
        from realtime.control import check_panel_packages

        check_panel_packages()
    source = open_source(config.capture)
    preview, recording = None, None
    if config.control.control:
        from realtime.control.preview import PreviewSink
        from realtime.control.recording import RecordingSink

        preview, recording = PreviewSink(), RecordingSink(source.info, config.output, Path(config.control.record_dir))
    try:
        pipeline, plan = build_pipeline(config, source, specs, stages, extra_sinks, side_sinks=[preview, recording] if preview and recording else [])
    except BaseException:
        source.close()
        raise
    log.info(
        "input: %s (%dx%d @ %.3g fps)%s; outputs: %s; queues: %s",
        source.info.description, source.info.width, source.info.height, source.info.fps,
        ", paced" if plan.paced else "", ", ".join(s.name for s in pipeline.sinks), plan.policy,
    )
    show_status = config.stats.stats or (not config.stats.quiet and source.info.total_frames is not None)
    status = _StatusPrinter(pipeline.stats) if show_status else None
    poller = ControlsPoller(_controls_watchers(config, pipeline))
    result: RunResult | None = None
    t_run_start, cpu_start = time.perf_counter(), process_cpu_seconds()
    run_failed = True
    panel = None
    try:
        poller.start()
        if preview is not None:
            from realtime.control.server import start_panel

            panel = start_panel(config.control, pipeline, preview, recording)
        result = pipeline.run(on_tick=status.tick if status else None)
        run_failed = False
    finally:
        poller.stop()
        if panel is not None:
            panel.stop()
        # Written even when the run failed: the report of a failing run is the most useful one.
        if status:
            status.finish()
        meta = {**run_metadata(config, source.info, plan.__dict__), **(extra_meta or {})}
        meta["interrupted"] = bool(result and result.interrupted)
        meta["error"] = str(pipeline.fatal_error) if pipeline.fatal_error else None
        meta["dropped_outputs"] = dict(pipeline.dropped_outputs)
        meta["stages_info"] = {pipeline.source.name: pipeline.source.describe(), **{stage.name: stage.describe() for stage in pipeline.stages}}
        report = pipeline.stats.report(meta)
        report["resources"] = resource_usage(time.perf_counter() - t_run_start, cpu_start)
        report["outputs"] = _output_paths(pipeline)
        if config.stats.report:
            try:
                write_report(report, Path(config.stats.report))
            except Exception as exc:  # noqa: BLE001 - never let the report hide the run's own error
                if not run_failed:
                    raise
                log.error("could not write the report %s (%s)", config.stats.report, exc)
    return result, report


class ControlsPoller:
    """Polls the live-controls files once a second on a thread of its own: a slow or odd file
    never holds up the main thread, which watches the pipeline and answers Ctrl-C."""

    def __init__(self, watchers: Sequence[Any], interval_s: float = 1.0) -> None:
        self.watchers = list(watchers)
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="realtime-controls", daemon=True)

    def start(self) -> None:
        if self.watchers:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            for watcher in self.watchers:
                try:
                    watcher.poll()
                except Exception as exc:  # noqa: BLE001 - a controls file never ends the stream
                    log.warning("live controls: %s: %s", type(exc).__name__, exc)


def _controls_watchers(config: Config, pipeline: Pipeline) -> list[Any]:
    """Live blend controls from --controls-file, polled once a second by the main thread."""
    if not config.blend.controls_file:
        return []
    from realtime.live import ControlsFileWatcher
    from realtime.stages.blend import BlendStage

    return [ControlsFileWatcher(Path(config.blend.controls_file), s.settings) for s in pipeline.stages if isinstance(s, BlendStage)]


def _output_paths(pipeline: Pipeline) -> list[str]:
    paths = []
    for worker in pipeline.workers:
        sink = getattr(worker, "sink", None)
        if isinstance(sink, FileSink) and sink.final_path is not None:
            paths.append(str(sink.final_path))
        elif sink is not None and not sink.name.startswith("panel-"):  # the panel's own views are not outputs
            paths.append(sink.name)
    return paths


class _StatusPrinter:
    """Prints the one-line status; on a terminal it rewrites one line, in a log it appends."""

    def __init__(self, stats: StatsCollector) -> None:
        self.stats = stats
        self.tty = sys.stderr.isatty()

    def tick(self) -> None:
        line = self.stats.status_line()
        if self.tty:
            sys.stderr.write("\r\x1b[2K" + line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def finish(self) -> None:
        if self.tty:
            sys.stderr.write("\n")
