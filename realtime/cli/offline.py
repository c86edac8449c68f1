"""The offline commands: prepare-faces, train-identity, eval-identity, train-aei, train-target,
eval-swap, build-engines."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from realtime.cli.common import EXIT_OK, UsageError, log, setup_logging


def add_parsers(commands: Any) -> None:
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



def cmd_prepare_faces(args: argparse.Namespace) -> int:
    from realtime.config import DetectConfig
    from realtime.train.prepare import PrepareOptions, prepare_faces

    setup_logging(args.debug, quiet=False)
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

    setup_logging(args.debug, quiet=False)
    return run_from_args(args)


def _device(choice: str) -> str:
    import torch

    return ("cuda" if torch.cuda.is_available() else "cpu") if choice == "auto" else choice


def cmd_train_identity(args: argparse.Namespace) -> int:
    from realtime.train.data import face_records, load_crops
    from realtime.train.distill import Distiller, DistillOptions

    setup_logging(args.debug, quiet=False)
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

    setup_logging(args.debug, quiet=False)
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

    setup_logging(args.debug, quiet=False)
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
    from realtime.eval.swap import describe_result, evaluate_generator
    from realtime.eval.swap_measures import write_example_grid

    setup_logging(args.debug, quiet=False)
    result, examples = evaluate_generator(args.faces, args.generator, args.identity_encoder, identities=args.identities, judge=not args.no_judge, person=args.person)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    write_example_grid(examples, args.json.with_suffix(".png"), rows="the person / input / swap" if "person" in result else "source / target / swap")
    print("\n".join(describe_result(result)) + f"\nwrote {args.json} and {args.json.with_suffix('.png')}")
    return EXIT_OK


def cmd_eval_identity(args: argparse.Namespace) -> int:
    import numpy as np

    from realtime.eval.identity import make_pairs, verify
    from realtime.models.checkpoint import load_checkpoint
    from realtime.train.data import face_records, load_crops
    from realtime.train.distill import embed
    from realtime.train.teacher import load_teacher

    setup_logging(args.debug, quiet=False)
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


COMMANDS = {
    "build-engines": cmd_build_engines, "prepare-faces": cmd_prepare_faces, "train-identity": cmd_train_identity,
    "eval-identity": cmd_eval_identity, "train-aei": cmd_train_aei, "train-target": cmd_train_target, "eval-swap": cmd_eval_swap,
}
