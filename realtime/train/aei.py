"""``realtime train-aei``: AEI-Net trained with FaceShifter's objective.

Each step draws sources and targets from the face crops (with probability ``same_prob`` the source
is the target image, so the reconstruction loss applies), embeds the source with our frozen
identity encoder, swaps, and updates the generator on

    L_G = L_adv + λ_att·L_att + λ_id·L_id + λ_rec·L_rec   (hinge; 10, 5, 10 as in the paper)

then the multi-scale PatchGAN on the hinge loss. Optional terms (each off by default) add feature
matching, a second encoder's identity loss, a perceptual loss and a contrastive identity loss with
the target as a hard negative; ``--identity-views`` lets each identity encoder judge its own random
degraded view of the swap (``identity_views.py``), so no single network's shortcut pays. Mixed precision (bf16 autocast) on CUDA; Adam
with β1 = 0 as the paper. The same code runs on a CPU (smoke), one GPU or several through torchrun
(DDP: each rank takes its share of every batch). ``state.pt`` resumes exactly; with β1 = 0 Adam's
first moment is overwritten by the next gradient, so it is not stored (the state stays small
enough to travel). ``--time-limit-s`` ends a chunk cleanly; the state can be handed back in
parts of < 16 MiB. Writes ``aei-net.safetensors`` (FP16), ``losses.jsonl``/``losses.png`` and
``samples.png`` (source / target / swap).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from realtime.errors import ConfigError
from realtime.inference.spec import from_generator, to_generator
from realtime.models.aei_net import AEINet, core_state
from realtime.models.checkpoint import load_checkpoint, save_checkpoint
from realtime.train.common import BatchShare, ChunkedTrainer, distributed, plot_losses, rank_device
from realtime.train.discriminator import MultiScaleDiscriminator, load_weights, save_weights
from realtime.train.distill import augment
from realtime.train.identity_views import ViewParameters, apply_view, draw_view_parameters
from realtime.train.options import AEIOptions
from realtime.train.phases import NullClock
from realtime.train.swap_losses import (
    attribute_loss,
    contrastive_identity_loss,
    feature_matching_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    identity_loss,
    masked_mean,
    reconstruction_loss,
)
from realtime.train.teacher import load_teacher, teacher_view

log = logging.getLogger("realtime")
IDENTITY_SIZE = 112
LOSS_KEYS = ("g", "adv", "att", "id", "rec", "fm", "id2", "perc", "hneg", "d")
DISCRIMINATOR_FILE = "discriminator.safetensors"


class SwapWithAttributes(nn.Module):
    """The generator's training forward: the swap plus the attribute maps of target and swap, in
    one module so DDP sees every use of the attribute encoder."""

    def __init__(self, generator: AEINet) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, target: torch.Tensor, identity: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """The swap, and the core's attribute maps of target and swap (a detail stage's features
        are not compared: matching them pixel for pixel would pull the swap back to the target)."""
        target_attributes = self.generator.attributes(target)
        swapped = self.generator.decode(target_attributes, identity)
        core = len(self.generator.blocks)
        return swapped, target_attributes[:core], self.generator.core_attributes(swapped)


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-1] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def compact_adam_state(state: dict[str, Any]) -> dict[str, Any]:
    """An Adam state_dict without the first moments when β1 = 0 (the next step overwrites them)."""
    if any(group["betas"][0] != 0 for group in state["param_groups"]):
        return state
    return {**state, "state": {key: {k: v for k, v in value.items() if k != "exp_avg"} for key, value in state["state"].items()}}


def expand_adam_state(state: dict[str, Any]) -> dict[str, Any]:
    return {**state, "state": {key: value if "exp_avg" in value else {**value, "exp_avg": torch.zeros_like(value["exp_avg_sq"])} for key, value in state["state"].items()}}


def freeze(module: nn.Module, frozen: bool) -> None:
    for parameter in module.parameters():
        parameter.requires_grad_(not frozen)


class AEITrainer(ChunkedTrainer):
    loss_keys = LOSS_KEYS
    architecture_options = ("crop_size", "attr_width", "gen_width", "max_mult", "detail_width", "d_scales", "d_width")

    def __init__(self, crops: np.ndarray, encoder_path: Path, output: Path, options: AEIOptions, device: str, *, second_encoder_path: Path | None = None,
                 init_generator: Path | None = None, init_discriminator: Path | None = None) -> None:
        if crops.ndim != 4 or crops.shape[1] != crops.shape[2] or crops.shape[1] < IDENTITY_SIZE or crops.shape[3] != 3:
            raise ValueError(f"crops must be (N, S, S, 3) with S ≥ {IDENTITY_SIZE}, not {crops.shape}")
        self.rank, self.world = distributed()
        self.share = BatchShare.of(options.batch, self.rank, self.world)
        self.device = rank_device(device)
        self.cuda = self.device.type == "cuda"
        self.options = options
        self.output = output
        torch.manual_seed(options.seed)
        self.faces = torch.from_numpy(crops).to(self.device)
        encoder, _ = load_checkpoint(encoder_path, expect="identity_encoder")
        self.encoder = encoder.to(self.device).eval()
        freeze(self.encoder, True)
        if options.lambda_id2 > 0 and second_encoder_path is None:
            raise ConfigError("--lambda-id2 needs a second identity encoder", "add --second-identity-encoder ../shared/models/teacher_mobilefacenet_casia_112x96.ckpt (or set --lambda-id2 0)")
        # a second judge of identity, trained on other data: the generator cannot satisfy it by
        # exploiting the first encoder's blind spots
        self.second_encoder = load_teacher(second_encoder_path).to(self.device) if options.lambda_id2 > 0 and second_encoder_path else None
        if self.second_encoder is not None:
            freeze(self.second_encoder, True)
        self.generator = AEINet(**options.generator_hyperparameters(encoder.embed_dim)).to(self.device)  # type: ignore[arg-type]
        self.discriminator = MultiScaleDiscriminator(scales=options.d_scales, width=options.d_width).to(self.device)
        if init_generator is not None:  # a resume (later) overwrites these with the run's own state
            self.generator.load_state_dict(starting_generator(self.generator, init_generator))
        if init_discriminator is not None:
            self.discriminator.load_state_dict(starting_discriminator(self.discriminator, init_discriminator))
        # cuDNN's bf16 convolutions run fastest on NHWC tensors (set before DDP takes its views);
        # a compiled step chooses its own layouts, and inductor (torch 2.11) mis-strides a 2×2
        # convolution's backward when handed NHWC weights
        self.channels_last = self.cuda and not options.compile
        if self.channels_last:
            for module in (self.encoder, self.generator, self.discriminator):
                module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        swap: nn.Module = SwapWithAttributes(self.generator)
        critic: nn.Module = self.discriminator
        if torch.distributed.is_initialized():
            ids = [self.device.index] if self.cuda else None
            swap = nn.parallel.DistributedDataParallel(swap, device_ids=ids)
            critic = nn.parallel.DistributedDataParallel(critic, device_ids=ids)
        self.swap, self.critic = swap, critic
        betas = (0.0, 0.999)
        fused = self.cuda  # one kernel per optimiser step instead of a few per parameter
        self.optimiser_g = torch.optim.Adam(self.generator.parameters(), lr=options.lr, betas=betas, fused=fused)
        self.optimiser_d = torch.optim.Adam(self.discriminator.parameters(), lr=options.lr, betas=betas, fused=fused)
        # drawn on the device: a GPU step then needs no copy from the host and no synchronisation
        self.random = torch.Generator(self.device).manual_seed(options.seed)
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.clock: NullClock = NullClock()  # bench/profile_train_aei.py times the phases of a step with a PhaseClock
        compiled = self.cuda and options.compile
        self.generator_objective = torch.compile(self._generator_objective) if compiled else self._generator_objective
        self.critic_objective = torch.compile(self._critic_objective) if compiled else self._critic_objective
        # fixed pairs for the sample grid: the same faces every time, so grids compare across steps
        picks = torch.randperm(len(self.faces), generator=torch.Generator().manual_seed(12345))[:16]
        self.sample_sources, self.sample_targets = picks[:8], picks[8:16] if len(picks) >= 16 else picks[:8].roll(1)

    def draw_batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """This rank's (sources at the identity encoder's 112 px, targets at crop size, same) for the
        next step; crops larger than 112 px keep their detail for the targets."""
        return self.draw_batch_with_ids()[:3]

    def draw_batch_with_ids(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``draw_batch``'s three, and which face each source and target is (B,): the hard-negative
        loss must not count a copy of the source as a negative."""
        per_rank, share, random = self.options.batch // self.world, self.share, self.random
        sources = share.randint(len(self.faces), per_rank, generator=random).to(self.device)
        targets = share.randint(len(self.faces), per_rank, generator=random).to(self.device)
        same = (share.rand(per_rank, generator=random) < self.options.same_prob).to(self.device)
        source_images = augment(to_generator(self.faces[sources]), random, share)
        target_images = augment(to_generator(self.faces[targets]), random, share)
        source_images = torch.where(same[:, None, None, None], target_images, source_images)
        sources_out, targets_out = resize(source_images, IDENTITY_SIZE), resize(target_images, self.options.crop_size)
        if self.channels_last:
            sources_out, targets_out = sources_out.contiguous(memory_format=torch.channels_last), targets_out.contiguous(memory_format=torch.channels_last)
        source_ids = torch.where(same, targets, sources)  # a `same` sample's source is its target's face
        return sources_out, targets_out, same, source_ids, targets

    def draw_views(self) -> tuple[ViewParameters | None, ViewParameters | None]:
        """This step's random views of the swap, one for our encoder and an independent one for the
        second (None where --identity-views is 0, or there is no second encoder: nothing is drawn,
        so a run without views draws exactly the random numbers it always drew). Drawn here, not in
        the compiled objective, which must hold no random draws of its own."""
        strength = self.options.identity_views
        if strength == 0:
            return None, None
        per_rank = self.options.batch // self.world
        ours = draw_view_parameters(per_rank, strength, self.random, self.share, size=IDENTITY_SIZE)
        second = draw_view_parameters(per_rank, strength, self.random, self.share, size=IDENTITY_SIZE) if self.second_encoder is not None else None
        return ours, second

    def identity_input(self, swapped_112: torch.Tensor, view: ViewParameters | None) -> torch.Tensor:
        """What an identity encoder reads of the swap: the swap itself, or ``view`` of it."""
        if view is None:
            return swapped_112
        seen = apply_view(swapped_112, view)
        return seen.contiguous(memory_format=torch.channels_last) if self.channels_last else seen

    def _generator_objective(self, sources: torch.Tensor, targets: torch.Tensor, same: torch.Tensor, source_ids: torch.Tensor | None = None, target_ids: torch.Tensor | None = None,
                             views: tuple[ViewParameters | None, ViewParameters | None] = (None, None)) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """FaceShifter's generator loss, plus the optional terms whose weight is not 0: (total, the
        swaps, the terms in ``LOSS_KEYS`` order from "adv" to "hneg"). ``views`` (``draw_views``):
        what our encoder and the second one see of the swap (None: the swap itself); the source's
        embedding is always of the clean source. ``source_ids``/``target_ids``: which faces were
        drawn (``draw_batch_with_ids``), for the hard negatives. The discriminator is frozen by the
        caller, so its weights get no gradient here."""
        options = self.options
        zero = sources.new_zeros((), dtype=torch.float32)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cuda):
            with torch.no_grad():
                source_identity = self.encoder(sources)
            swapped, target_attributes, swapped_attributes = self.swap(targets, source_identity)
            swapped_112 = resize(swapped, IDENTITY_SIZE)
            swapped_identity = self.encoder(self.identity_input(swapped_112, views[0]))
            fake_features, fake_scores = self.discriminator.features_and_scores(swapped)
            adversarial = hinge_generator_loss(fake_scores)
            attributes = attribute_loss(swapped_attributes, [a.detach() for a in target_attributes])
            identity = identity_loss(swapped_identity, source_identity)
            reconstruction = reconstruction_loss(swapped, targets, same)
            matching = zero
            if options.lambda_fm > 0:
                with torch.no_grad():
                    real_features, _ = self.discriminator.features_and_scores(targets)
                matching = feature_matching_loss(fake_features, real_features)
            identity2 = zero
            if self.second_encoder is not None:
                with torch.no_grad():
                    source_identity2 = self.second_encoder(teacher_view(sources))
                identity2 = identity_loss(self.second_encoder(teacher_view(self.identity_input(swapped_112, views[1]))), source_identity2)
            perceptual = zero
            if options.lambda_perceptual > 0:
                with torch.no_grad():
                    wanted = encoder_features(self.encoder, resize(targets, IDENTITY_SIZE))
                produced = encoder_features(self.encoder, swapped_112)
                perceptual = masked_mean((produced.float() - wanted.float()).abs().flatten(1).mean(dim=1), same)
            hard_negative = zero
            if options.lambda_hard_negative > 0:
                with torch.no_grad():  # the person being replaced, from the clean target as the source is
                    target_identity = self.encoder(resize(targets, IDENTITY_SIZE))
                hard_negative = contrastive_identity_loss(swapped_identity, source_identity, target_identity, same, options.hard_negative_temperature,
                                                          source_ids=source_ids, target_ids=target_ids)
            total = (adversarial + options.lambda_att * attributes + options.lambda_id * identity + options.lambda_rec * reconstruction
                     + options.lambda_fm * matching + options.lambda_id2 * identity2 + options.lambda_perceptual * perceptual
                     + options.lambda_hard_negative * hard_negative)
        return total, swapped, torch.stack([adversarial, attributes, identity, reconstruction, matching, identity2, perceptual, hard_negative])

    def _critic_objective(self, targets: torch.Tensor, swapped: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cuda):
            scores = self.critic(torch.cat([targets, swapped]))
            half = len(targets)
            return hinge_discriminator_loss([s[:half] for s in scores], [s[half:] for s in scores])

    def advance(self) -> torch.Tensor:
        """One step of both networks; the losses (``LOSS_KEYS`` order) stay on the device, so
        nothing waits for the GPU until the loop reads them (every ``log_every`` steps)."""
        clock = self.clock
        with clock.phase("data and augmentation"):
            sources, targets, same, source_ids, target_ids = self.draw_batch_with_ids()
            views = self.draw_views()
        self.generator.train()
        freeze(self.discriminator, True)  # the generator's step must not touch D (nor DDP's D hooks)
        with clock.phase("generator forward and losses"):
            total, swapped, terms = self.generator_objective(sources, targets, same, source_ids, target_ids, views)
        with clock.phase("generator backward"):
            self.optimiser_g.zero_grad(set_to_none=True)
            total.backward()
        with clock.phase("generator optimiser"):
            self.optimiser_g.step()
        freeze(self.discriminator, False)
        with clock.phase("discriminator forward and loss"):
            critic_loss = self.critic_objective(targets, swapped.detach())
        with clock.phase("discriminator backward"):
            self.optimiser_d.zero_grad(set_to_none=True)
            critic_loss.backward()
        with clock.phase("discriminator optimiser"):
            self.optimiser_d.step()
        self.step += 1
        clock.end_step()
        return torch.cat([total.detach()[None], terms.detach(), critic_loss.detach()[None]]).float()

    def train_step(self) -> dict[str, float]:
        """One step, its losses read back (a synchronisation: loops use ``advance``)."""
        return dict(zip(LOSS_KEYS, self.advance().tolist(), strict=True))

    def training_state(self) -> dict[str, Any]:
        return {
            "generator": self.generator.state_dict(), "discriminator": self.discriminator.state_dict(),
            "optimiser_g": compact_adam_state(self.optimiser_g.state_dict()), "optimiser_d": compact_adam_state(self.optimiser_d.state_dict()),
        }

    def load_training_state(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimiser_g.load_state_dict(expand_adam_state(state["optimiser_g"]))
        self.optimiser_d.load_state_dict(expand_adam_state(state["optimiser_d"]))

    @torch.no_grad()
    def swap_faces(self, sources: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Swapped crops (B, 3, S, S) for face indices, the generator in inference mode."""
        self.generator.eval()
        try:
            identity = self.encoder(resize(to_generator(self.faces[sources.to(self.device)]), IDENTITY_SIZE))
            return self.generator(resize(to_generator(self.faces[targets.to(self.device)]), self.options.crop_size), identity)
        finally:
            self.generator.train()

    def write_samples(self) -> None:
        swapped = self.swap_faces(self.sample_sources, self.sample_targets)
        size = self.options.crop_size
        rows = [resize(to_generator(self.faces[i.to(self.device)]), size) for i in (self.sample_sources, self.sample_targets)] + [swapped]
        self.output.mkdir(parents=True, exist_ok=True)
        write_grid(rows, self.output / "samples.png", labels=("source", "target", f"swap, step {self.step}"))

    def method(self) -> str:
        """The objective in words, for the model card's training record."""
        o = self.options
        text = f"FaceShifter objective: hinge adversarial (multi-scale PatchGAN) + {o.lambda_att:g} attribute + {o.lambda_id:g} identity + {o.lambda_rec:g} reconstruction"
        terms = ((o.lambda_fm, "feature matching"), (o.lambda_id2, "second-encoder identity"), (o.lambda_perceptual, "perceptual"),
                 (o.lambda_hard_negative, f"contrastive identity with the target as a hard negative (T = {o.hard_negative_temperature:g})"))
        extras = [f"{w:g} {name}" for w, name in terms if w > 0]
        views = f"; each identity encoder judges its own random view of the swap (strength {o.identity_views:g})" if o.identity_views > 0 else ""
        return text + "".join(f" + {e}" for e in extras) + views

    def export(self) -> None:
        """The shipped generator (FP16 safetensors with its training record) and the curves."""
        self.output.mkdir(parents=True, exist_ok=True)
        generator = AEINet(**self.options.generator_hyperparameters(self.encoder.embed_dim))  # type: ignore[arg-type]
        generator.load_state_dict(self.generator.state_dict())
        training = {
            "method": self.method(),
            "steps": self.step, "batch": self.options.batch, "faces": len(self.faces), "world_size": self.world,
        }
        hyperparameters = self.options.generator_hyperparameters(self.encoder.embed_dim)
        save_checkpoint(self.output / "aei-net.safetensors", generator.half().eval(), architecture="aei_net", hyperparameters=hyperparameters, training=training, template="arcface", weight_storage=self.options.weight_storage)
        # FP16 weights small enough to carry to a fresh machine: --init-discriminator restarts from them
        save_weights(self.discriminator, self.output / DISCRIMINATOR_FILE)
        with (self.output / "losses.jsonl").open("w") as handle:
            for row in self.history:
                handle.write(json.dumps(row) + "\n")
        plot_losses(self.history, self.output / "losses.png", "AEI-Net training (FaceShifter losses)", LOSS_KEYS)
        self.write_samples()


def starting_generator(generator: AEINet, path: Path) -> dict[str, torch.Tensor]:
    """The state a new run starts from: ``path``'s weights when it is ``generator``'s architecture,
    or a 128-px model as the core of a generator with a detail stage."""
    start, info = load_checkpoint(path, expect="aei_net")
    state = {name: tensor.float() for name, tensor in start.state_dict().items()}
    ours = generator.state_dict()
    if state.keys() == ours.keys() and all(state[k].shape == ours[k].shape for k in state):
        return state
    if generator.detail is not None and info.crop_size == generator.core_size:
        try:
            return core_state(generator, state)
        except ValueError as exc:
            raise ConfigError(f"--init-generator {path}: {exc}", "use the core's --attr-width/--gen-width/--max-mult") from None
    raise ConfigError(f"--init-generator {path} is a {info.crop_size}-px AEI-Net of other widths than this run's", "start from a model of this run's architecture, or a 128-px one with --crop-size 256 --detail-width N")


def starting_discriminator(discriminator: nn.Module, path: Path) -> dict[str, torch.Tensor]:
    state = load_weights(path)
    ours = discriminator.state_dict()
    if state.keys() != ours.keys() or any(state[k].shape != ours[k].shape for k in state):
        raise ConfigError(f"--init-discriminator {path} does not fit this run's discriminator", "use the discriminator.safetensors of a run with the same crop size")
    return state


def encoder_features(encoder: nn.Module, faces_112: torch.Tensor) -> torch.Tensor:
    """Mid-level maps of the identity encoder (its stem and first eight blocks): features that
    see texture and parts rather than who it is, for a perceptual loss."""
    blocks = cast("nn.Sequential", encoder.blocks)[:8]
    return blocks(cast("nn.Module", encoder.stem)(faces_112))


def write_grid(rows: list[torch.Tensor], path: Path, *, labels: tuple[str, ...] = ()) -> None:
    """A PNG with one row of crops per tensor in ``rows`` ((B, 3, S, S) in [-1, 1]), labelled."""
    import cv2

    strips = []
    for index, row in enumerate(rows):
        images = from_generator(row).cpu().numpy()
        strip = np.concatenate(list(images), axis=1)
        label = np.full((18, strip.shape[1], 3), 255, np.uint8)
        if index < len(labels):
            cv2.putText(label, labels[index], (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        strips += [label, strip]
    grid = np.concatenate(strips, axis=0)
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
