"""What the training commands take: their inputs and their options, each field once, with the help
text its flag shows (``realtime.options.option``). Fields without help are hyperparameters that
only code changes. Kept free of torch and OpenCV so that parsing a command line (``--help``, a
usage error) imports neither."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from realtime.choices import TemplateName
from realtime.errors import ConfigError
from realtime.options import option, required

GeneratorCrop = Literal[128, 256]
TRAINED_CROP = 112  # the identity encoder's input: the trainers read crops of this size


def _at_least(value: float, minimum: float, flag: str, example: str) -> None:
    if value < minimum:
        raise ConfigError(f"{flag} {value} is too small: it must be at least {minimum}", f"e.g. {flag} {example}")


@dataclass(frozen=True)
class PrepareInputs:
    input: tuple[Path, ...] = required("image folders (a subfolder per person, like LFW) and/or video files")
    output: Path = required("a new folder for the shards and manifest.json")
    landmarker_model: str | None = option(None, "path of face_landmarker.task (default: resolved as for run)")


@dataclass(frozen=True)
class PrepareOptions:
    crop_size: int = option(256, "aligned crop size: 112, 128 or 256")
    template: TemplateName = option("arcface", "alignment template")
    min_face_px: float = option(30.0, "skip faces whose eyes are closer than this, in pixels (LFW's faces have about 35–45)")
    max_yaw: float = option(0.35, "skip faces turned further than this: |nose offset from the eye midpoint| / eye distance (0 frontal, ~0.5 profile)")
    dedup_threshold: float = 4.0  # mean grey-level change of a 32² thumbnail below which a frame repeats
    video_stride: int = option(1, "look at every Nth video frame")
    min_age: int = 18
    jpeg_quality: int = 92
    shard_mib: float = option(60.0, "largest shard in MiB")

    def __post_init__(self) -> None:
        if self.crop_size not in (112, 128, 256):
            raise ConfigError(f"--crop-size {self.crop_size} is not supported", "use 112, 128 or 256")
        _at_least(self.video_stride, 1, "--video-stride", "2")
        _at_least(self.shard_mib, 2, "--shard-mib", "60")


@dataclass(frozen=True)
class TrainRun:
    """Where a training run writes, and on what it runs: shared by every trainer."""

    output: Path = required("folder for state.pt (resume), the trained model and its plots")
    device: str = option("auto", "cuda, cpu or auto")
    save_parts: Path | None = option(None, "also write the training state into DIR in parts of at most --part-mib MiB each (for transfers that limit a file's size; a resume joins them)", metavar="DIR")
    part_mib: int = option(15, "the largest part --save-parts writes, in MiB", metavar="N")

    def __post_init__(self) -> None:
        _at_least(self.part_mib, 1, "--part-mib", "15")


@dataclass(frozen=True)
class DistillInputs:
    faces: tuple[Path, ...] = required("datasets from prepare-faces at --crop-size 112")
    teacher: Path = required("the MobileFaceNet teacher checkpoint")


@dataclass(frozen=True)
class DistillOptions:
    steps: int = option(3000, "optimiser steps in all")
    batch: int = option(256, "faces per step, across all GPUs")
    lr: float = option(2e-3, "peak learning rate")
    weight_decay: float = 5e-4
    seed: int = 0
    log_every: int = 50
    save_every: int = 500
    sample_every: int = 0  # no sample grids for an encoder
    time_limit_s: float | None = option(None, "save and stop after this long (chunked GPU sessions); rerun to resume")

    def __post_init__(self) -> None:
        _at_least(self.batch, 2, "--batch", "256")
        _at_least(self.steps, 1, "--steps", "3000")


@dataclass(frozen=True)
class AEIInputs:
    faces: tuple[Path, ...] = required("datasets from prepare-faces at --crop-size 112, 128 or 256 (no minors); several sizes train together at the largest, so 256-px video frames keep their detail beside 112-px photos")
    identity_encoder: Path = required("the identity encoder for the identity loss (e.g. models/identity-encoder-v1.safetensors)")
    second_identity_encoder: Path | None = option(None, "a second frozen identity encoder for --lambda-id2: the MobileFaceNet teacher checkpoint (e.g. ../shared/models/teacher_mobilefacenet_casia_112x96.ckpt)")
    init_generator: Path | None = option(None, "start a new run from this AEI-Net: one of the same architecture, or a 128-px one as the core of --detail-width (e.g. aei-net-v1.safetensors, from git: git show 674a0a5:models/aei-net-v1.safetensors); ignored when resuming")
    init_discriminator: Path | None = option(None, "start a new run's discriminator from this file (discriminator.safetensors, written beside each trained model); ignored when resuming")


@dataclass(frozen=True)
class AEIOptions:
    crop_size: GeneratorCrop = option(128, "generator crop size")
    attr_width: int = option(12, "channels of the attribute encoder's finest level (each coarser level doubles them)")
    gen_width: int = option(12, "channels of the generator's finest AAD block (each coarser level doubles them)")
    max_mult: int = option(6, "cap on the doubling: the coarse levels' channels are at most width × this")
    detail_width: int = option(0, "with --crop-size 256: a 128-px core plus a detail stage this wide that doubles its output (0: none)")
    steps: int = option(20000, "optimiser steps in all")
    batch: int = option(64, "pairs per step, across all GPUs")
    lr: float = option(4e-4, "Adam learning rate of both networks")
    same_prob: float = 0.2
    lambda_att: float = 10.0
    lambda_id: float = 5.0
    lambda_rec: float = 10.0
    lambda_fm: float = option(0.0, "weight of feature matching on the discriminator's activations, swap against target (SimSwap's; 0: FaceShifter's objective)")
    lambda_id2: float = option(0.0, "weight of an identity loss from --second-identity-encoder (0: none)")
    lambda_perceptual: float = option(0.0, "weight of an L1 on the identity encoder's mid-level features, swap against target, on the pairs whose source is the target (0: none)")
    identity_views: float = option(0.0, "each identity encoder judges its own random view of the swap (crop, shift, turn, blur, rescale, colour, JPEG), ranges scaled by this strength in [0, 1] (0: the swap itself)", metavar="STRENGTH")
    lambda_hard_negative: float = option(0.0, "weight of a contrastive identity loss: the swap nearer its source than the other sources in the batch and its own target (0: none)", metavar="W")
    hard_negative_temperature: float = option(0.1, "temperature of --lambda-hard-negative's softmax over cosines")
    d_scales: int = 2
    d_width: int = 32
    seed: int = 0
    log_every: int = 50
    sample_every: int = option(500, "write samples.png every N steps")
    save_every: int = 1000
    time_limit_s: float | None = option(None, "save and stop after this long (chunked GPU sessions); rerun to resume")
    compile: bool = option(True, "on CUDA, torch.compile the step's forward passes and losses (--no-compile: eager, to compare or debug)")
    weight_storage: Literal["float", "int8"] = option("float", "how aei-net.safetensors stores its weights: FP16, or int8 with a scale per channel (about half the file; dequantised at load)")

    def __post_init__(self) -> None:
        _at_least(self.batch, 2, "--batch", "64")
        _at_least(self.steps, 1, "--steps", "20000")
        for name in ("lambda_fm", "lambda_id2", "lambda_perceptual", "lambda_hard_negative"):
            _at_least(getattr(self, name), 0.0, f"--{name.replace('_', '-')}", "1")
        if not 0.0 <= self.identity_views <= 1.0:
            raise ConfigError(f"--identity-views {self.identity_views} is not a strength in [0, 1]", "e.g. --identity-views 0.5 (0: off)")
        if self.hard_negative_temperature <= 0:
            raise ConfigError(f"--hard-negative-temperature {self.hard_negative_temperature} must be above 0", "e.g. --hard-negative-temperature 0.1")
        _at_least(self.detail_width, 0, "--detail-width", "16")
        if self.detail_width and self.crop_size != 256:
            raise ConfigError(f"--detail-width {self.detail_width} doubles a 128-px core to 256 px, and --crop-size is {self.crop_size}", "add --crop-size 256 (or drop --detail-width)")

    def generator_hyperparameters(self, id_dim: int) -> dict[str, int]:
        shape = {"crop_size": self.crop_size, "id_dim": id_dim, "attr_width": self.attr_width, "gen_width": self.gen_width, "max_mult": self.max_mult}
        return {**shape, "detail_width": self.detail_width} if self.detail_width else shape


@dataclass(frozen=True)
class TargetInputs:
    target: Path = required("the person to become: a video, a folder of photos, or a prepare-faces dataset")
    faces: tuple[Path, ...] = required("datasets from prepare-faces of many other people (what the shared encoder learns from)")
    perceptual_encoder: Path | None = option(None, "add a perceptual loss on this identity encoder's features (e.g. models/identity-encoder-v1.safetensors)")


@dataclass(frozen=True)
class TargetOptions:
    crop_size: GeneratorCrop = option(128, "model crop size")
    width: int = 32
    bottleneck: int = 512
    steps: int = option(20000, "optimiser steps in all")
    batch: int = option(32, "faces per side per step, across all GPUs")
    lr: float = option(1e-4, "Adam learning rate")
    lambda_mask: float = 1e-2
    lambda_tv: float = 1e-1
    lambda_adv: float = 0.1
    lambda_perceptual: float = 0.0  # > 0 turns the perceptual term on (needs an identity encoder)
    mixup: bool = option(False, "train the discriminator on mixup of real and generated faces")
    warp_px: float = 0.05  # random warp amplitude, in crop widths
    max_grad_norm: float = 1.0
    seed: int = 0
    log_every: int = 50
    sample_every: int = option(500, "write samples.png every N steps")
    save_every: int = 1000
    time_limit_s: float | None = option(None, "save and stop after this long (chunked GPU sessions); rerun to resume")

    def __post_init__(self) -> None:
        _at_least(self.batch, 2, "--batch", "32")
        _at_least(self.steps, 1, "--steps", "20000")

    def model_hyperparameters(self) -> dict[str, int]:
        return {"crop_size": self.crop_size, "identities": 2, "width": self.width, "bottleneck": self.bottleneck}


@dataclass(frozen=True)
class ReenactInputs:
    faces: tuple[Path, ...] = required("datasets from prepare-faces at one crop size (their landmarks.npy: datasets prepared before it was kept must be prepared again)")
    identity_encoder: Path = required("the identity encoder for the identity and perceptual losses (e.g. models/identity-encoder-v1.safetensors)")
    second_identity_encoder: Path | None = option(None, "a second frozen identity encoder judging cross-person pairs: the MobileFaceNet teacher checkpoint")


@dataclass(frozen=True)
class ReenactOptions:
    """The refiner of design b: the source photo warped onto the target's pose, refined."""

    crop_size: GeneratorCrop = option(256, "refiner crop size")
    width: int = option(16, "channels of the refiner's finest level (each coarser level doubles them)")
    levels: int = option(5, "halvings of the refiner's U-Net")
    max_mult: int = option(8, "cap on the doubling: the coarse levels' channels are at most width × this")
    steps: int = option(20000, "optimiser steps in all")
    batch: int = option(32, "pairs per step")
    lr: float = option(2e-4, "Adam learning rate of both networks")
    paired_prob: float = option(0.5, "share of pairs whose answer is known: two frames of one person, or one photo seen again with its head moved and relit")
    video_prob: float = option(0.5, "of the paired ones, the share taken from two frames of one person where the data has them")
    lambda_rec: float = 10.0
    lambda_perceptual: float = 2.0
    lambda_id: float = 5.0
    lambda_id2: float = option(0.0, "weight of the identity loss from --second-identity-encoder on cross-person pairs (0: none)")
    lambda_light: float = option(5.0, "weight of matching the target's light: the refined face's blurred self against the target's")
    lambda_adv: float = 1.0
    identity_views: float = option(0.5, "each identity encoder judges its own random view of the refined face (crop, blur, rescale, colour, JPEG; strength in [0, 1])", metavar="STRENGTH")
    d_scales: int = 2
    d_width: int = 32
    seed: int = 0
    log_every: int = 50
    sample_every: int = option(500, "write samples.png every N steps")
    save_every: int = 1000
    time_limit_s: float | None = option(None, "save and stop after this long (chunked GPU sessions); rerun to resume")

    def __post_init__(self) -> None:
        _at_least(self.batch, 2, "--batch", "32")
        _at_least(self.steps, 1, "--steps", "20000")
        _at_least(self.width, 1, "--width", "16")
        for name in ("paired_prob", "video_prob", "identity_views"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"--{name.replace('_', '-')} {getattr(self, name)} is not in [0, 1]", "e.g. 0.5")
        for name in ("lambda_rec", "lambda_perceptual", "lambda_id", "lambda_id2", "lambda_light", "lambda_adv"):
            _at_least(getattr(self, name), 0.0, f"--{name.replace('_', '-')}", "1")
        if self.crop_size % (1 << self.levels):
            raise ConfigError(f"--crop-size {self.crop_size} is not divisible by 2^{self.levels}", "use --levels 5 or fewer")

    def refiner_hyperparameters(self) -> dict[str, int]:
        return {"crop_size": self.crop_size, "width": self.width, "levels": self.levels, "max_mult": self.max_mult}
