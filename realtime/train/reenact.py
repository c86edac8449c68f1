"""``realtime train-reenact``: the refiner of design b (issue 33). Each pair's source is carried
onto the target's pose by the reenactment warp; the refiner makes it look as if the target's
camera saw it. Three kinds of pair:

- two frames of one person (clips): the answer is the second frame;
- one photo seen again with its head moved and relit (``reenact_pairs.second_view``): the answer
  is the photo itself — so a person with one photo still teaches lighting and repair;
- two different people: no answer; the refined face must keep the source's identity (our
  encoder, and the teacher when given, each judging its own random view), match the target's
  light, and look real to a multi-scale PatchGAN.

Known-answer pairs are scored on the face outline without the eyes and mouth (the blend shows the
target's own there), by L1 and by the identity encoder's mid-level features. Eager, one process;
bf16 autocast on CUDA.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from realtime.inference.spec import to_generator
from realtime.models.checkpoint import load_checkpoint, save_checkpoint
from realtime.models.reenact_refiner import ReenactRefiner
from realtime.train.aei import compact_adam_state, encoder_features, expand_adam_state, freeze, resize, write_grid
from realtime.train.common import ChunkedTrainer, plot_losses
from realtime.train.discriminator import MultiScaleDiscriminator
from realtime.train.identity_views import apply_view, draw_view_parameters
from realtime.train.options import ReenactOptions
from realtime.train.reenact_pairs import second_view
from realtime.train.swap_losses import hinge_discriminator_loss, hinge_generator_loss, identity_loss, masked_mean
from realtime.train.teacher import load_teacher, teacher_view
from realtime.vision.reenact_torch import low_pass, reenact, region_masks, target_context

IDENTITY_SIZE = 112
LOSS_KEYS = ("g", "rec", "perc", "id", "id2", "light", "adv", "d")


def partners(identities: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For drawing a second face of the same person: faces sorted by identity, and for each face
    the start and count of its person's run in that order (count 1: no partner; unknown people
    (−1) never pair)."""
    order = np.argsort(identities, kind="stable")
    sorted_ids = identities[order]
    start = np.argsort(order)  # a face alone is a run of one: itself
    count = np.ones(len(identities), np.int64)
    bounds = np.flatnonzero(np.diff(sorted_ids)) + 1
    for begin, end in zip(np.r_[0, bounds], np.r_[bounds, len(identities)], strict=True):
        if sorted_ids[begin] >= 0:
            start[order[begin:end]] = begin
            count[order[begin:end]] = end - begin
    return order, start, count


class ReenactTrainer(ChunkedTrainer):
    loss_keys = LOSS_KEYS
    architecture_options = ("crop_size", "width", "levels", "max_mult", "d_scales", "d_width")

    def __init__(self, crops: np.ndarray, landmarks: np.ndarray, identities: np.ndarray, encoder_path: Path, output: Path, options: ReenactOptions,
                 device: str, *, second_encoder_path: Path | None = None) -> None:
        size = options.crop_size
        if crops.shape[1:] != (size, size, 3) or landmarks.shape != (len(crops), 478, 2) or identities.shape != (len(crops),):
            raise ValueError(f"crops (N, {size}, {size}, 3), landmarks (N, 478, 2) and identities (N,) must agree, not {crops.shape}, {landmarks.shape}, {identities.shape}")
        self.rank, self.world, self.device, self.options, self.output = 0, 1, torch.device(device), options, output
        self.cuda = self.device.type == "cuda"
        torch.manual_seed(options.seed)
        self.faces = torch.from_numpy(crops).to(self.device)
        self.landmarks = torch.from_numpy(landmarks.astype(np.float32)).to(self.device)
        order, start, count = partners(identities)
        self.order, self.start, self.count = (torch.from_numpy(a).to(self.device) for a in (order, start, count))
        self.place = torch.argsort(self.order)  # each face's position in that order
        self.has_video_pairs = bool((count > 1).any())
        encoder, _ = load_checkpoint(encoder_path, expect="identity_encoder")
        self.encoder = encoder.to(self.device).eval()
        freeze(self.encoder, True)
        self.second_encoder = load_teacher(second_encoder_path).to(self.device) if second_encoder_path and options.lambda_id2 > 0 else None
        if self.second_encoder is not None:
            freeze(self.second_encoder, True)
        self.refiner = ReenactRefiner(**options.refiner_hyperparameters()).to(self.device)
        self.discriminator = MultiScaleDiscriminator(scales=options.d_scales, width=options.d_width).to(self.device)
        betas = (0.5, 0.999)
        self.optimiser_g = torch.optim.Adam(self.refiner.parameters(), lr=options.lr, betas=betas)
        self.optimiser_d = torch.optim.Adam(self.discriminator.parameters(), lr=options.lr, betas=betas)
        self.random = torch.Generator(self.device).manual_seed(options.seed)
        self.step = 0
        self.history: list[dict[str, float]] = []
        picks = torch.randperm(len(self.faces), generator=torch.Generator().manual_seed(12345))
        self.sample_sources, self.sample_targets = picks[:8], picks[8:16] if len(picks) >= 16 else picks[:8].roll(1)

    def _rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self.random, device=self.device)

    def draw_batch(self) -> dict[str, torch.Tensor]:
        """The step's pairs: source and target images (B, 3, S, S) in [-1, 1], their landmarks, and
        which pairs have a known answer (``paired``)."""
        batch, count = self.options.batch, len(self.faces)
        targets = torch.randint(count, (batch,), generator=self.random, device=self.device)
        sources = torch.randint(count, (batch,), generator=self.random, device=self.device)
        paired = self._rand(batch) < self.options.paired_prob
        video = paired & (self._rand(batch) < self.options.video_prob) & (self.count[targets] > 1)
        # a second frame of the target's person: another member of its run (never itself)
        offset = (torch.floor(self._rand(batch) * (self.count[targets] - 1).clamp(min=1)).long() + 1) % self.count[targets].clamp(min=1)
        own_place = self.place[targets] - self.start[targets]
        partner = self.order[self.start[targets] + (own_place + offset) % self.count[targets]]
        sources = torch.where(video, partner, torch.where(paired, targets, sources))
        source_images, source_points = to_generator(self.faces[sources]), self.landmarks[sources]
        photo = paired & ~video  # one photo seen again: its moved, relit self is the source
        if bool(photo.any()):
            seen, moved = second_view(source_images[photo], source_points[photo], self.random)
            source_images, source_points = source_images.clone(), source_points.clone()
            source_images[photo], source_points[photo] = seen, moved
        return {"sources": source_images, "source_points": source_points, "targets": to_generator(self.faces[targets]),
                "target_points": self.landmarks[targets], "paired": paired}

    def refine(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The refiner on a batch: its output, the composite (refined face in the target's crop), masks."""
        size = self.options.crop_size
        warped, inside = reenact(batch["sources"], batch["source_points"], batch["target_points"], size)
        outline, holes = region_masks(batch["target_points"], size)
        context = target_context(batch["targets"], outline)
        refined = self.refiner(context, warped, inside * outline)[0]
        composite = refined * outline + batch["targets"] * (1 - outline)
        return {"warped": warped, "refined": refined, "composite": composite, "outline": outline, "holes": holes}

    def _identity(self, encoder: torch.nn.Module, images_112: torch.Tensor, teacher: bool) -> torch.Tensor:
        view = draw_view_parameters(len(images_112), self.options.identity_views, self.random, size=IDENTITY_SIZE) if self.options.identity_views > 0 else None
        seen = apply_view(images_112, view) if view is not None else images_112
        return encoder(teacher_view(seen) if teacher else seen)

    def advance(self) -> torch.Tensor:
        options, batch = self.options, self.draw_batch()
        paired = batch["paired"]
        zero = batch["targets"].new_zeros(())
        freeze(self.discriminator, True)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cuda):
            out = self.refine(batch)
            weight = out["outline"] * (1 - out["holes"])
            per_sample = ((out["refined"].float() - batch["targets"].float()).abs() * weight).flatten(1).sum(1) / (3 * weight.flatten(1).sum(1)).clamp(min=1)
            reconstruction = masked_mean(per_sample, paired)
            composite_112 = resize(out["composite"], IDENTITY_SIZE)
            perceptual = zero
            if options.lambda_perceptual > 0 and bool(paired.any()):
                with torch.no_grad():
                    wanted = encoder_features(self.encoder, resize(batch["targets"][paired], IDENTITY_SIZE))
                perceptual = (encoder_features(self.encoder, composite_112[paired]).float() - wanted.float()).abs().mean()
            cross = ~paired
            identity = identity2 = zero
            if bool(cross.any()):
                with torch.no_grad():
                    source_112 = resize(batch["sources"][cross], IDENTITY_SIZE)
                    wanted_id = self.encoder(source_112)
                identity = identity_loss(self._identity(self.encoder, composite_112[cross], teacher=False), wanted_id)
                if self.second_encoder is not None:
                    with torch.no_grad():
                        wanted_id2 = self.second_encoder(teacher_view(source_112))
                    identity2 = identity_loss(self._identity(self.second_encoder, composite_112[cross], teacher=True), wanted_id2)
            light = ((low_pass(out["refined"].float()) - low_pass(batch["targets"].float())).abs() * low_pass(out["outline"])).mean()
            adversarial = hinge_generator_loss(self.discriminator(out["composite"]))
            total = (options.lambda_rec * reconstruction + options.lambda_perceptual * perceptual + options.lambda_id * identity + options.lambda_id2 * identity2
                     + options.lambda_light * light + options.lambda_adv * adversarial)
        self.optimiser_g.zero_grad(set_to_none=True)
        total.backward()
        self.optimiser_g.step()
        freeze(self.discriminator, False)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cuda):
            scores = self.discriminator(torch.cat([batch["targets"], out["composite"].detach()]))
            half = len(batch["targets"])
            critic = hinge_discriminator_loss([s[:half] for s in scores], [s[half:] for s in scores])
        self.optimiser_d.zero_grad(set_to_none=True)
        critic.backward()
        self.optimiser_d.step()
        self.step += 1
        return torch.stack([total, reconstruction, perceptual, identity, identity2, light, adversarial, critic]).detach().float()

    def train_step(self) -> dict[str, float]:
        return dict(zip(LOSS_KEYS, self.advance().tolist(), strict=True))

    def training_state(self) -> dict[str, Any]:
        return {"refiner": self.refiner.state_dict(), "discriminator": self.discriminator.state_dict(),
                "optimiser_g": compact_adam_state(self.optimiser_g.state_dict()), "optimiser_d": compact_adam_state(self.optimiser_d.state_dict())}

    def load_training_state(self, state: dict[str, Any]) -> None:
        self.refiner.load_state_dict(state["refiner"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimiser_g.load_state_dict(expand_adam_state(state["optimiser_g"]))
        self.optimiser_d.load_state_dict(expand_adam_state(state["optimiser_d"]))

    @torch.no_grad()
    def write_samples(self) -> None:
        """source | target | the warp alone | refined, pasted into the target's crop: for fixed
        cross-person pairs, so grids compare across steps."""
        self.refiner.eval()
        try:
            sources, targets = self.sample_sources.to(self.device), self.sample_targets.to(self.device)
            batch = {"sources": to_generator(self.faces[sources]), "source_points": self.landmarks[sources], "targets": to_generator(self.faces[targets]),
                     "target_points": self.landmarks[targets]}
            out = self.refine(batch)
            warp_alone = out["warped"] * out["outline"] + batch["targets"] * (1 - out["outline"])
            self.output.mkdir(parents=True, exist_ok=True)
            write_grid([batch["sources"], batch["targets"], warp_alone, out["composite"]], self.output / "samples.png",
                       labels=("source", "target", "warp alone", f"refined, step {self.step}"))
        finally:
            self.refiner.train()

    def export(self) -> None:
        self.output.mkdir(parents=True, exist_ok=True)
        refiner = ReenactRefiner(**self.options.refiner_hyperparameters())
        refiner.load_state_dict(self.refiner.state_dict())
        o = self.options
        training = {"method": (f"reenact and refine: thin-plate warp of the source onto the target's landmarks, refined; {o.lambda_rec:g} L1 + {o.lambda_perceptual:g} "
                               f"perceptual on known-answer pairs ({o.paired_prob:g} of them), {o.lambda_id:g} identity (+ {o.lambda_id2:g} second encoder), "
                               f"{o.lambda_light:g} light, {o.lambda_adv:g} hinge adversarial; identity views {o.identity_views:g}"),
                    "steps": self.step, "batch": o.batch, "faces": len(self.faces)}
        save_checkpoint(self.output / "reenact-refiner.safetensors", refiner.half().eval(), architecture="reenact_refiner",
                        hyperparameters=o.refiner_hyperparameters(), training=training, template="arcface")
        with (self.output / "losses.jsonl").open("w") as handle:
            for row in self.history:
                handle.write(json.dumps(row) + "\n")
        plot_losses(self.history, self.output / "losses.png", "reenactment refiner", LOSS_KEYS)
        self.write_samples()


def identity_numbers(labels: list[str | None]) -> np.ndarray:
    """Each face's person as a number (−1: unknown, never paired with another face)."""
    names = sorted({label for label in labels if label})
    index = {name: i for i, name in enumerate(names)}
    return np.array([index[label] if label else -1 for label in labels], np.int64)

