"""The live commands: run, bench, track, swap-image, doctor."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from realtime.cli.common import EXIT_FAILED, EXIT_OK, UsageError, exit_code_of, setup_logging
from realtime.cli.flags import (
    RUN_SECTIONS,
    SWAP_IMAGE_SECTIONS,
    TRACK_SECTIONS,
    add_common,
    add_config_arguments,
    config_from_args,
)
from realtime.errors import ConfigError


def add_parsers(commands: Any) -> None:
    run = commands.add_parser("run", help="run the pipeline on a camera, file, URL or the demo clip")
    add_common(run)
    add_config_arguments(run, RUN_SECTIONS)

    bench = commands.add_parser("bench", help="measure throughput and latency, write a JSON report")
    bench.add_argument("what", nargs="?", choices=["pipeline", "engine", "generator", "blend"], default="pipeline", help="pipeline (default): a real input; engine: the queue/thread engine alone; generator: ms per face per backend; blend: paste-back cost per frame")
    bench.add_argument("--checkpoint", type=Path, help="generator: the checkpoint to time (default: a new AEI-Net with random weights, for timing only)")
    bench.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4], help="generator: batch sizes (default: 1 2 4)")
    bench.add_argument("--frames", type=int, default=300, help="frames to measure (default: 300)")
    bench.add_argument("--compare", type=Path, nargs=2, metavar=("A.json", "B.json"), help="print two reports side by side instead of running")
    bench.add_argument("--json", type=Path, help="write the report here (a PNG plot is written beside it)")
    bench.add_argument("--size", default="1920x1080", help="engine: frame size (default: 1920x1080)")
    add_common(bench)
    add_config_arguments(bench, RUN_SECTIONS)

    track = commands.add_parser("track", help="find and track faces in a video; write every frame's landmarks as JSON")
    track.add_argument("--json", type=Path, required=True, help="where to write the per-frame track log")
    add_common(track)
    add_config_arguments(track, TRACK_SECTIONS)

    swap_image = commands.add_parser("swap-image", help="swap the face of --source onto every face in --target (still images)")
    swap_image.add_argument("--target", type=Path, required=True, help="the image whose faces are replaced")
    swap_image.add_argument("--output", type=Path, required=True, help="where to write the result (.png or .jpg)")
    add_common(swap_image)
    add_config_arguments(swap_image, SWAP_IMAGE_SECTIONS)

    doctor = commands.add_parser("doctor", help="check this machine: packages, GPU, cameras, virtual camera")
    doctor.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)


def cmd_run(args: argparse.Namespace) -> int:
    from realtime import app

    config = config_from_args(args, RUN_SECTIONS)
    setup_logging(args.debug, config.stats.quiet)
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

    if args.compare:
        from realtime.report import compare_reports

        reports = []
        for path in args.compare:
            try:
                reports.append(json.loads(path.read_text()))
            except (OSError, json.JSONDecodeError) as exc:
                raise ConfigError(f"cannot read report {path} ({exc})", "pass two JSON reports written by realtime run/bench") from None
        table = compare_reports(reports[0], reports[1], (args.compare[0].stem, args.compare[1].stem))
        print(table, end="")
        if args.json:
            args.json.with_suffix(".md").write_text(table)
        return EXIT_OK
    if args.frames < 1:
        raise UsageError("--frames must be at least 1", "e.g. --frames 300")
    if args.json is not None and not args.json.parent.exists():
        raise ConfigError(f"report folder {args.json.parent} does not exist", f"create it (mkdir -p {args.json.parent})")
    if args.what == "generator":
        return _bench_generator(args)
    if args.what == "blend":
        from realtime.config import parse_size

        width, height = parse_size(args.size, what="--size")
        result = bench.bench_blend(width=width, height=height, iters=min(args.frames, 1000), crop_size=args.crop_size or 256, fuse=getattr(args, "blend_compile", "off"), engines_dir=getattr(args, "engines_dir", "auto"))
        print(bench.format_blend_table(result))
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        return EXIT_OK
    if args.what == "engine":
        from realtime.config import parse_size

        width, height = parse_size(args.size, what="--size")
        setup_logging(args.debug, quiet=True)
        result = bench.bench_engine(frames=args.frames, width=width, height=height, paced_frames=min(args.frames, 600))
        print(bench.format_engine_table(result))
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        return EXIT_OK
    overrides = dict(vars(args))
    overrides.setdefault("output", ["null"])
    overrides["max_frames"] = args.frames
    overrides.setdefault("pace", "none")
    if args.json is not None:
        overrides["report"] = str(args.json)
    config = config_from_args(argparse.Namespace(**overrides), RUN_SECTIONS)
    setup_logging(args.debug, config.stats.quiet)
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
    setup_logging(args.debug, config.stats.quiet)
    result, report = app.run(config, extra_sinks=[lambda info: TrackLogSink(args.json, info)], extra_meta={"command": "track"})
    if not config.stats.quiet:
        track = report["stages_info"].get("track", {})
        print(
            f"done: {report['frames']['done']} frames, {track.get('tracks_started', 0)} tracks, "
            f"{track.get('frames_without_face', 0)} frames without a face; wrote {args.json}"
        )
    return exit_code_of(result)


def _bench_generator(args: argparse.Namespace) -> int:
    from realtime import bench
    from realtime.inference.spec import GeneratorSpec, spec_from_checkpoint

    setup_logging(args.debug, quiet=True)
    if args.checkpoint is not None:
        spec = spec_from_checkpoint(args.checkpoint)
    else:
        import torch

        from realtime.models.aei_net import AEINet

        torch.manual_seed(0)
        spec = GeneratorSpec("aei_net", AEINet().eval(), 256, 128, "random-weights")
        print("no --checkpoint: timing a new AEI-Net (256 px, default width) with random weights")
    # --backends and --engines-dir are the swap options: the same names mean the same thing here.
    backends = getattr(args, "backends", None)
    from realtime.inference.engine_dir import resolve_engines_dir

    result = bench.bench_generator(spec, resolve_engines_dir(getattr(args, "engines_dir", "auto")), batches=args.batches, backends=backends)
    print(bench.format_generator_table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return EXIT_OK


def cmd_swap_image(args: argparse.Namespace) -> int:
    from realtime.swap_image import swap_image

    config = config_from_args(args, SWAP_IMAGE_SECTIONS)
    setup_logging(args.debug, quiet=False)
    faces = swap_image(config, args.target, args.output)
    print(f"done: swapped {faces} face(s); wrote {args.output}")
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from realtime.doctor import run_checks

    checks = run_checks()
    for check in checks:
        print(f"{check.status:<5} {check.name:<16} {check.detail}")
    return EXIT_FAILED if any(c.status == "fail" for c in checks) else EXIT_OK


COMMANDS = {"run": cmd_run, "bench": cmd_bench, "track": cmd_track, "swap-image": cmd_swap_image, "doctor": cmd_doctor}
