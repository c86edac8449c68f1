"""The live commands: run, bench, track, swap-image, doctor."""

from __future__ import annotations

import argparse
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from realtime.cli.common import EXIT_FAILED, EXIT_OK, ConfigFile, DebugFlag, UsageError, exit_code_of, setup_logging
from realtime.cli.flags import (
    RUN_SECTIONS,
    SWAP_IMAGE_SECTIONS,
    TRACK_SECTIONS,
    add_config_arguments,
    add_dataclass_arguments,
    config_from_args,
    from_args,
)
from realtime.config import SwapConfig, load_toml
from realtime.errors import ConfigError
from realtime.options import option, required

log = logging.getLogger("realtime")

BenchWhat = Literal["pipeline", "engine", "generator", "blend"]


@dataclass(frozen=True)
class BenchOptions:
    what: BenchWhat = option("pipeline", "pipeline (default): a real input; engine: the queue/thread engine alone; generator: ms per face per backend; blend: paste-back cost per frame", positional=True)
    batches: tuple[int, ...] = option((1, 2, 4), "generator: batch sizes")
    frames: int = option(300, "frames to measure")
    compare: tuple[Path, Path] | None = option(None, "print two reports side by side instead of running", metavar=("A.json", "B.json"))
    json: Path | None = option(None, "write the report here (a PNG plot is written beside it)")
    size: str = option("1920x1080", "engine and blend: frame size")

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise UsageError("--frames must be at least 1", "e.g. --frames 300")
        if self.json is not None and not self.json.parent.exists():
            raise ConfigError(f"report folder {self.json.parent} does not exist", f"create it (mkdir -p {self.json.parent})")


@dataclass(frozen=True)
class TrackOptions:
    json: Path = required("where to write the per-frame track log")


@dataclass(frozen=True)
class SwapImageOptions:
    target: Path = required("the image whose faces are replaced")
    output: Path = required("where to write the result (.png or .jpg)")


@dataclass(frozen=True)
class DoctorOptions:
    models: tuple[Path, ...] = option((), "model files to check (files, or folders: every file in them): what each is to realtime (an ONNX swapper's profile, an occluder's or face parser's family, an identity encoder, a checkpoint) with its sha256 and licence, or why it cannot be used", metavar="PATH")


# Each command: its help and its flags' dataclasses (the config sections after them).
COMMAND_FLAGS: dict[str, tuple[str, tuple[type, ...], tuple[str, ...]]] = {
    "run": ("run the pipeline on a camera, file, URL or the demo clip", (ConfigFile, DebugFlag), RUN_SECTIONS),
    "bench": ("measure throughput and latency, write a JSON report", (BenchOptions, ConfigFile, DebugFlag), RUN_SECTIONS),
    "track": ("find and track faces in a video; write every frame's landmarks as JSON", (TrackOptions, ConfigFile, DebugFlag), TRACK_SECTIONS),
    "swap-image": ("swap the face of --source onto every face in --target (still images)", (SwapImageOptions, ConfigFile, DebugFlag), SWAP_IMAGE_SECTIONS),
    "doctor": ("check this machine: packages, GPU, cameras, virtual camera, and your own ONNX models", (DoctorOptions, DebugFlag), ()),
}


def add_parsers(commands: Any) -> None:
    for name, (help_text, option_types, sections) in COMMAND_FLAGS.items():
        parser = commands.add_parser(name, help=help_text)
        for option_type in option_types:
            add_dataclass_arguments(parser, option_type)
        add_config_arguments(parser, sections)


def _debug(args: argparse.Namespace) -> bool:
    return from_args(DebugFlag, args).debug


def check_controls_file(path: str | None) -> None:
    """Before anything opens: a --controls-file that exists must be what the run can read, a small
    regular TOML file, or it is refused with the line a bad edit gets while the run goes on (a
    FIFO given at the start was ignored without a word). One that does not exist yet is read once
    it does."""
    if path is None:
        return
    if not os.path.lexists(path):
        log.info("controls file %s does not exist yet: it is read once it does", path)
        return
    load_toml(Path(path), "controls file")


def cmd_run(args: argparse.Namespace) -> int:
    from realtime import app

    config = config_from_args(args, RUN_SECTIONS)
    setup_logging(_debug(args), config.stats.quiet)
    check_controls_file(config.blend.controls_file)
    result, report = app.run(config)
    if not config.stats.quiet:
        latency = report["latency_ms"]
        summary = f"{report['frames']['done']} frames"
        if latency.get("count"):
            summary += f", {report['throughput_fps']} fps, latency p50 {latency['p50']:.1f} ms p95 {latency['p95']:.1f} ms"
        if config.detect.faces and not config.swap.generator:
            summary += " (faces tracked, not swapped: no --generator)"
        dropped = report.get("dropped_outputs") or {}
        if dropped:
            summary += f"; dropped after an error: {', '.join(dropped)}"
        print(f"done: {summary}; wrote {', '.join(report['outputs'])}" + (f" and {config.stats.report}" if config.stats.report else ""))
    return exit_code_of(result)


def cmd_bench(args: argparse.Namespace) -> int:
    from realtime import app, bench

    opts = from_args(BenchOptions, args)
    if opts.compare:
        from realtime.report import compare_reports

        reports = []
        for path in opts.compare:
            try:
                reports.append(json.loads(path.read_text()))
            except (OSError, json.JSONDecodeError) as exc:
                raise ConfigError(f"cannot read report {path} ({exc})", "pass two JSON reports written by realtime run/bench") from None
        table = compare_reports(reports[0], reports[1], (opts.compare[0].stem, opts.compare[1].stem))
        print(table, end="")
        if opts.json:
            opts.json.with_suffix(".md").write_text(table)
        return EXIT_OK
    overrides = dict(vars(args))
    overrides.setdefault("output", ["null"])
    overrides["max_frames"] = opts.frames
    overrides.setdefault("pace", "none")
    if opts.json is not None:
        overrides["report"] = str(opts.json)
    config = config_from_args(argparse.Namespace(**overrides), RUN_SECTIONS)
    if opts.what == "generator":
        # --generator, --backends, --engines-dir, --pixel-boost...: the swap options mean the same here
        return _bench_generator(opts, config.swap, "backends" in vars(args), _debug(args))
    if opts.what in ("blend", "engine"):
        from realtime.config import parse_size

        width, height = parse_size(opts.size, what="--size")
        setup_logging(_debug(args), quiet=True)
        if opts.what == "blend":
            result = bench.bench_blend(width=width, height=height, iters=min(opts.frames, 1000), crop_size=config.track.crop_px, fuse=config.blend.blend_compile, engines_dir=config.swap.engines_dir, detail=config.blend.detail)
            print(bench.format_blend_table(result))
        else:
            result = bench.bench_engine(frames=opts.frames, width=width, height=height, paced_frames=min(opts.frames, 600))
            print(bench.format_engine_table(result))
        if opts.json:
            opts.json.write_text(json.dumps(result, indent=2) + "\n")
        return EXIT_OK
    setup_logging(_debug(args), config.stats.quiet)
    check_controls_file(config.blend.controls_file)
    _, report = app.run(config, extra_meta={"benchmark": "pipeline"})
    latency, stages = report["latency_ms"], report["stages"]
    print(f"{report['frames']['done']} frames in {report['duration_s']} s: {report['throughput_fps']} fps; latency p50 {latency.get('p50')} ms p95 {latency.get('p95')} ms p99 {latency.get('p99')} ms")
    for name, stage in stages.items():
        print(f"  {name:<12} work p50 {stage['process_ms'].get('p50')} ms p95 {stage['process_ms'].get('p95')} ms; wait p50 {stage['wait_ms'].get('p50')} ms")
    return EXIT_OK


def cmd_track(args: argparse.Namespace) -> int:
    from realtime import app
    from realtime.io.track_log import TrackLogSink

    config = config_from_args(args, TRACK_SECTIONS)
    setup_logging(_debug(args), config.stats.quiet)
    log_path = from_args(TrackOptions, args).json
    result, report = app.run(config, extra_sinks=[lambda info: TrackLogSink(log_path, info)], extra_meta={"command": "track"})
    if not config.stats.quiet:
        track = report["stages_info"].get("track", {})
        print(
            f"done: {report['frames']['done']} frames, {track.get('tracks_started', 0)} tracks, "
            f"{track.get('frames_without_face', 0)} frames without a face; wrote {log_path}"
        )
    return exit_code_of(result)


def _bench_generator(opts: BenchOptions, swap: SwapConfig, backends_given: bool, debug: bool) -> int:
    from realtime import bench
    from realtime.generators import GeneratorRequest, load_spec
    from realtime.inference.engine_dir import resolve_engines_dir
    from realtime.inference.spec import GeneratorSpec

    setup_logging(debug, quiet=True)
    if swap.generator is not None:
        spec = load_spec(GeneratorRequest.from_swap(swap))
    else:
        import torch

        from realtime.models.aei_net import AEINet

        torch.manual_seed(0)
        spec = GeneratorSpec("aei_net", AEINet().eval(), 256, 128, "random-weights")
        print("no --generator: timing a new AEI-Net (256 px, default width) with random weights")
    result = bench.bench_generator(spec, resolve_engines_dir(swap.engines_dir), batches=list(opts.batches), backends=swap.backends if backends_given else None)
    print(bench.format_generator_table(result))
    if opts.json:
        opts.json.write_text(json.dumps(result, indent=2) + "\n")
    return EXIT_OK


def cmd_swap_image(args: argparse.Namespace) -> int:
    from realtime.still import swap_image

    config = config_from_args(args, SWAP_IMAGE_SECTIONS)
    setup_logging(_debug(args), quiet=False)
    paths = from_args(SwapImageOptions, args)
    faces = swap_image(config, paths.target, paths.output)
    print(f"done: swapped {faces} face(s); wrote {paths.output}")
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from realtime.doctor import run_checks

    checks = run_checks(list(from_args(DoctorOptions, args).models))
    for check in checks:
        print(f"{check.status:<5} {check.name:<16} {check.detail}")
    return EXIT_FAILED if any(c.status == "fail" for c in checks) else EXIT_OK


COMMANDS = {"run": cmd_run, "bench": cmd_bench, "track": cmd_track, "swap-image": cmd_swap_image, "doctor": cmd_doctor}
