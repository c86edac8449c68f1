"""The offline commands: prepare-faces, train-identity, eval-identity, train-aei, train-target,
eval-swap, build-engines."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from realtime.cli.common import EXIT_OK, DebugFlag, UsageError, log, setup_logging
from realtime.cli.flags import add_dataclass_arguments, from_args
from realtime.errors import ConfigError
from realtime.eval.options import EvalIdentityOptions, EvalSwapOptions
from realtime.inference.build_options import BuildOptions
from realtime.train.options import (
    TRAINED_CROP,
    AEIInputs,
    AEIOptions,
    DistillInputs,
    DistillOptions,
    PrepareInputs,
    PrepareOptions,
    ReenactInputs,
    ReenactOptions,
    TargetInputs,
    TargetOptions,
    TrainRun,
)

# Each command's flags: its dataclasses, in the order --help lists them.
FLAGS: dict[str, tuple[type, ...]] = {
    "prepare-faces": (PrepareInputs, PrepareOptions, DebugFlag),
    "train-identity": (DistillInputs, TrainRun, DistillOptions, DebugFlag),
    "eval-identity": (EvalIdentityOptions, DebugFlag),
    "train-aei": (AEIInputs, TrainRun, AEIOptions, DebugFlag),
    "train-target": (TargetInputs, TrainRun, TargetOptions, DebugFlag),
    "train-reenact": (ReenactInputs, TrainRun, ReenactOptions, DebugFlag),
    "eval-swap": (EvalSwapOptions, DebugFlag),
    "build-engines": (BuildOptions, DebugFlag),
}
HELP = {
    "prepare-faces": "images and videos → aligned face crops in tar shards (training data)",
    "train-identity": "train the identity encoder by distillation from the teacher (resumable; torchrun for several GPUs)",
    "eval-identity": "face verification on identity-labelled pairs: ROC, AUC, accuracy (student and teacher)",
    "train-aei": "train the AEI-Net generator with FaceShifter's losses (resumable, time-limited chunks; torchrun for several GPUs)",
    "train-target": "train a per-target autoencoder that turns any face into one person (faceswap-GAN; resumable; torchrun for several GPUs)",
    "train-reenact": "train the refiner that makes a source photo warped onto a target's pose look like the target's camera saw it (issue 33, design b; resumable chunks)",
    "eval-swap": "measure a generator on held-out people: identity (ours and dlib's judge), retrieval, landmarks kept",
    "build-engines": "compile a generator checkpoint into FP16 engines (TensorRT, AOTInductor, torch.compile cache)",
}


def add_parsers(commands: Any) -> None:
    for name, option_types in FLAGS.items():
        parser = commands.add_parser(name, help=HELP[name])
        for option_type in option_types:
            add_dataclass_arguments(parser, option_type)


def _debug(args: argparse.Namespace) -> bool:
    return from_args(DebugFlag, args).debug


def cmd_prepare_faces(args: argparse.Namespace) -> int:
    from realtime.config import DetectConfig
    from realtime.train.prepare import prepare_faces

    setup_logging(_debug(args), quiet=False)
    inputs, options = from_args(PrepareInputs, args), from_args(PrepareOptions, args)
    stats = prepare_faces(inputs.input, inputs.output, options, DetectConfig(max_faces=1, landmarker_model=inputs.landmarker_model))
    print(
        f"done: {stats.kept} faces from {stats.files} files in {len(stats.shards)} shard(s); skipped {stats.no_face} without a face, "
        f"{stats.too_small} too small, {stats.turned} turned, {stats.duplicates} near-duplicates, {stats.minors} under 18, {stats.unreadable} unreadable"
    )
    return EXIT_OK


def cmd_build_engines(args: argparse.Namespace) -> int:
    from realtime.engines import build_from_options

    setup_logging(_debug(args), quiet=False)
    return build_from_options(from_args(BuildOptions, args))


def _device(choice: str) -> str:
    import torch

    return ("cuda" if torch.cuda.is_available() else "cpu") if choice == "auto" else choice


def _trained_crops(faces: Sequence[Path], what: str, *, larger: bool = False) -> Any:
    """The datasets' crops: exactly the identity encoder's 112 px, or (``larger``) at least that."""
    from realtime.train.data import face_records, load_crops

    crops = load_crops(face_records(faces))
    size = crops.shape[1]
    if size < TRAINED_CROP or (size != TRAINED_CROP and not larger):
        wanted = f"{TRAINED_CROP} px or larger" if larger else f"{TRAINED_CROP} px"
        raise UsageError(f"the datasets hold {size} px crops; {what} reads {wanted} crops (the identity encoder's size is {TRAINED_CROP})", f"prepare them with --crop-size {TRAINED_CROP}" + (" or 128/256" if larger else ""))
    return crops


def cmd_train_identity(args: argparse.Namespace) -> int:
    from realtime.train.distill import Distiller

    setup_logging(_debug(args), quiet=False)
    inputs, run, options = from_args(DistillInputs, args), from_args(TrainRun, args), from_args(DistillOptions, args)
    crops = _trained_crops(inputs.faces, "the identity encoder")
    run.output.mkdir(parents=True, exist_ok=True)
    distiller = Distiller(crops, inputs.teacher, run.output, options, _device(run.device))
    return _run_trainer(distiller, run, options.steps, f"distilling on {len(crops)} faces", f"{run.output / 'identity.safetensors'} and {run.output / 'losses.png'}")


def cmd_train_aei(args: argparse.Namespace) -> int:
    from realtime.train.aei import AEITrainer

    setup_logging(_debug(args), quiet=False)
    inputs, run, options = from_args(AEIInputs, args), from_args(TrainRun, args), from_args(AEIOptions, args)
    if options.lambda_id2 > 0 and inputs.second_identity_encoder is None:  # before the datasets load
        raise ConfigError("--lambda-id2 needs a second identity encoder", "add --second-identity-encoder ../shared/models/teacher_mobilefacenet_casia_112x96.ckpt (or set --lambda-id2 0)")
    crops = _trained_crops(inputs.faces, "AEI-Net training", larger=True)
    run.output.mkdir(parents=True, exist_ok=True)
    trainer = AEITrainer(crops, inputs.identity_encoder, run.output, options, _device(run.device), second_encoder_path=inputs.second_identity_encoder,
                         init_generator=inputs.init_generator, init_discriminator=inputs.init_discriminator)
    wrote = f"{run.output / 'aei-net.safetensors'}, {run.output / 'losses.png'} and {run.output / 'samples.png'}"
    return _run_trainer(trainer, run, options.steps, f"training AEI-Net {options.crop_size} px on {len(crops)} faces", wrote)


def cmd_train_reenact(args: argparse.Namespace) -> int:
    from realtime.train.data import face_records, load_crops, load_landmarks
    from realtime.train.reenact import ReenactTrainer, identity_numbers

    setup_logging(_debug(args), quiet=False)
    inputs, run, options = from_args(ReenactInputs, args), from_args(TrainRun, args), from_args(ReenactOptions, args)
    records = face_records(inputs.faces)
    crops = load_crops(records)
    if crops.shape[1] != options.crop_size:
        raise UsageError(f"the datasets hold {crops.shape[1]} px crops; the refiner trains at --crop-size {options.crop_size}", f"prepare them with --crop-size {options.crop_size} (or pass --crop-size {crops.shape[1]})")
    landmarks = load_landmarks(records, options.crop_size)
    identities = identity_numbers([record.identity for record in records])
    run.output.mkdir(parents=True, exist_ok=True)
    trainer = ReenactTrainer(crops, landmarks, identities, inputs.identity_encoder, run.output, options, _device(run.device), second_encoder_path=inputs.second_identity_encoder)
    wrote = f"{run.output / 'reenact-refiner.safetensors'}, {run.output / 'losses.png'} and {run.output / 'samples.png'}"
    return _run_trainer(trainer, run, options.steps, f"training the reenactment refiner ({options.crop_size} px) on {len(crops)} faces", wrote)


def cmd_train_target(args: argparse.Namespace) -> int:
    from realtime.train.data import face_records, load_crops
    from realtime.train.target import TargetTrainer, load_target_faces

    setup_logging(_debug(args), quiet=False)
    inputs, run = from_args(TargetInputs, args), from_args(TrainRun, args)
    options = from_args(TargetOptions, args, lambda_perceptual=0.1 if inputs.perceptual_encoder else 0.0)
    run.output.mkdir(parents=True, exist_ok=True)
    target_crops = load_target_faces(inputs.target, run.output, options.crop_size)
    other_crops = load_crops(face_records(inputs.faces))
    trainer = TargetTrainer(target_crops, other_crops, run.output, options, _device(run.device), perceptual_encoder=inputs.perceptual_encoder)
    what = f"training a per-target autoencoder ({options.crop_size} px) on {len(target_crops)} target and {len(other_crops)} other faces"
    return _run_trainer(trainer, run, options.steps, what, f"{run.output / 'target.safetensors'} (swap with --generator it, --target-identity 0), losses.png and samples.png")


def _run_trainer(trainer: Any, run: TrainRun, steps: int, what: str, wrote: str) -> int:
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
    step = trainer.run(run.save_parts, part_bytes=run.part_mib << 20)
    if trainer.rank == 0:
        print(f"step {step}/{steps}; wrote {wrote}")
    return EXIT_OK


def cmd_eval_swap(args: argparse.Namespace) -> int:
    from realtime.eval.swap import describe_result, evaluate_generator
    from realtime.eval.swap_measures import write_example_grid

    setup_logging(_debug(args), quiet=False)
    opts = from_args(EvalSwapOptions, args)
    result, examples = evaluate_generator(opts.faces, opts.generator, opts.identity_encoder, identities=opts.identities, judge=opts.judge, person=opts.person, byo=opts.byo(), seed=opts.seed)
    opts.json.write_text(json.dumps(result, indent=2) + "\n")
    write_example_grid(examples, opts.json.with_suffix(".png"), rows="the person / input / swap" if "person" in result else "source / target / swap")
    print("\n".join(describe_result(result)) + f"\nwrote {opts.json} and {opts.json.with_suffix('.png')}")
    return EXIT_OK


def cmd_eval_identity(args: argparse.Namespace) -> int:
    import numpy as np

    from realtime.eval.identity import make_pairs, verify
    from realtime.models.checkpoint import load_checkpoint
    from realtime.train.data import face_records, load_crops
    from realtime.train.distill import embed
    from realtime.train.teacher import load_teacher

    setup_logging(_debug(args), quiet=False)
    opts = from_args(EvalIdentityOptions, args)
    records = face_records(opts.faces)
    pairs, labels = make_pairs(records, opts.pairs)
    used = np.unique(pairs)  # only the faces that appear in a pair are read and embedded
    crops = load_crops([records[i] for i in used])
    pairs = np.searchsorted(used, pairs)
    device = _device(opts.device)
    models = [(str(path), load_checkpoint(path, expect="identity_encoder")[0], False) for path in opts.encoder]
    if opts.teacher:
        models.append(("teacher", load_teacher(opts.teacher), True))
    results = {}
    curves = {}
    for name, model, is_teacher in models:
        result = verify(embed(model, crops, device, teacher=is_teacher), pairs, labels)
        results[name] = result.summary()
        curves[name] = result
        print(f"{name}: AUC {result.auc:.4f}, accuracy {result.best_accuracy:.4f} at cosine {result.best_threshold:.3f} ({result.pairs} pairs)")
    opts.json.write_text(json.dumps({"faces": [str(f) for f in opts.faces], "pairs": int(len(labels)), "results": results}, indent=2) + "\n")
    _plot_roc(curves, opts.json.with_suffix(".png"))
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
    "eval-identity": cmd_eval_identity, "train-aei": cmd_train_aei, "train-target": cmd_train_target, "train-reenact": cmd_train_reenact, "eval-swap": cmd_eval_swap,
}
