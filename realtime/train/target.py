"""``realtime train-target``: a ``TargetAutoencoder`` that turns any face into one person
(faceswap-GAN's recipe).

Decoder 0 learns the target person, decoder 1 everyone in ``--faces``; the encoder is shared, so at
swap time any face's code, decoded by decoder 0, comes out as the target with the input's pose and
expression (the live path's default ``--target-identity 0``). Each step, for both sides:

    x̃ = random_warp(x);  rgb, α = decoder_k(encoder(x̃));  ŷ = α·rgb + (1 − α)·x̃
    L_G = |ŷ − x|₁ + (1 − SSIM(ŷ, x))/2 + 0.5·|rgb − x|₁ + λ_m·mean(α) + λ_tv·TV(α)
          [+ λ_p·perceptual] + λ_adv·LSGAN(D_k(ŷ))

The warp makes copying the input wrong, so the decoder must draw the face; the mask terms keep α
from covering what it cannot draw well, and smooth. D is one PatchGAN with an output channel per
identity, trained with least squares (optionally on mixup of real and fake). Perceptual features
come from our identity encoder (no ImageNet network is available offline). CPU, one GPU or DDP;
exact resume; time-limited chunks; losses and a sample grid as PNG.
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

from realtime.inference.spec import to_generator
from realtime.models.checkpoint import load_checkpoint, save_checkpoint
from realtime.models.target_autoencoder import TargetAutoencoder
from realtime.train.aei import resize, write_grid
from realtime.train.common import WHOLE_BATCH, BatchShare, ChunkedTrainer, distributed, plot_losses, rank_device
from realtime.train.discriminator import PatchGAN
from realtime.train.options import TargetOptions

log = logging.getLogger("realtime")
LOSS_KEYS = ("g", "l1", "ssim", "mask", "adv", "perceptual", "d")


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11) -> torch.Tensor:
    """Mean structural similarity of (B, C, H, W) images in [-1, 1] (Gaussian window, σ = 1.5):
    1 for identical images, lower as structure differs."""
    a, b = (a.float() + 1) / 2, (b.float() + 1) / 2
    coords = torch.arange(window, dtype=torch.float32, device=a.device) - window // 2
    g = torch.exp(-(coords**2) / (2 * 1.5**2))
    g = (g / g.sum())[:, None] * (g / g.sum())[None, :]
    kernel = g.expand(a.shape[1], 1, window, window)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, kernel, groups=a.shape[1])

    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2, blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    return (((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))).mean()


def total_variation(mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring mask pixels: 0 for a flat mask."""
    return (mask[..., 1:, :] - mask[..., :-1, :]).abs().mean() + (mask[..., :, 1:] - mask[..., :, :-1]).abs().mean()


def lsgan_loss(scores: torch.Tensor, real: float | torch.Tensor) -> torch.Tensor:
    """Least-squares GAN: mean (D(x) − label)²; the label may be a per-sample tensor (mixup)."""
    label = real if isinstance(real, torch.Tensor) else torch.full((scores.shape[0],), real, device=scores.device)
    return ((scores.float() - label.view(-1, 1, 1, 1)) ** 2).mean()


def random_warp(faces: torch.Tensor, amplitude: float, generator: torch.Generator, share: BatchShare = WHOLE_BATCH) -> torch.Tensor:
    """A smooth random deformation per face (a 5×5 grid of offsets, bicubically upsampled): the
    'distorted input' of faceswap-GAN. faces: (B, 3, S, S) in [-1, 1], this rank's ``share``."""
    batch, _, size, _ = faces.shape
    offsets = (share.rand(batch, 2, 5, 5, generator=generator) * 2 - 1) * amplitude * 2  # in [-1, 1] grid units
    flow = F.interpolate(offsets, size=(size, size), mode="bicubic", align_corners=True).permute(0, 2, 3, 1).to(faces.device)
    identity = F.affine_grid(torch.eye(2, 3, device=faces.device).expand(batch, 2, 3), [batch, 3, size, size], align_corners=False)
    return F.grid_sample(faces, identity + flow, padding_mode="border", align_corners=False)


def load_target_faces(target: Path, output: Path, crop_size: int, *, minimum: int = 16) -> np.ndarray:
    """The target person's aligned crops: ``target`` is a prepare-faces dataset, or a video or a
    folder of photos, which is prepared once into ``output``/target-faces."""
    from realtime.errors import ConfigError
    from realtime.train.data import face_records, load_crops
    from realtime.train.prepare import PrepareOptions, prepare_faces

    dataset = target
    if not (target / "manifest.json").is_file():
        dataset = output / "target-faces"
        if not (dataset / "manifest.json").is_file():
            import shutil

            shutil.rmtree(dataset, ignore_errors=True)  # a run stopped half-way
            log.info("preparing the target's faces from %s", target)
            prepare_faces([target], dataset, PrepareOptions(crop_size=crop_size))
    crops = load_crops(face_records([dataset]))
    if len(crops) < minimum:
        raise ConfigError(f"only {len(crops)} faces of the target were found in {target}", "give a longer video or more photos (hundreds of frames work best)")
    return crops


class TargetDiscriminator(nn.Module):
    """A PatchGAN with one score map per identity: channel k judges 'a real face of person k'."""

    def __init__(self, *, identities: int = 2, width: int = 32) -> None:
        super().__init__()
        self.net = PatchGAN(width=width)
        last = self.net.net[-1]
        assert isinstance(last, nn.Conv2d)
        self.net.net[-1] = nn.Conv2d(last.in_channels, identities, 4, 1, 1)

    def forward(self, images: torch.Tensor, identity: int) -> torch.Tensor:
        return self.net(images)[:, identity : identity + 1]


class TargetTrainer(ChunkedTrainer):
    loss_keys = LOSS_KEYS
    architecture_options = ("crop_size", "width", "bottleneck")

    def __init__(self, target_crops: np.ndarray, other_crops: np.ndarray, output: Path, options: TargetOptions, device: str, *, perceptual_encoder: Path | None = None) -> None:
        self.rank, self.world = distributed()
        self.share = BatchShare.of(options.batch, self.rank, self.world)
        self.device = rank_device(device)
        self.cuda = self.device.type == "cuda"
        self.options = options
        self.output = output
        torch.manual_seed(options.seed)
        self.sides = [torch.from_numpy(target_crops).to(self.device), torch.from_numpy(other_crops).to(self.device)]
        self.model = TargetAutoencoder(**options.model_hyperparameters()).to(self.device)  # type: ignore[arg-type]
        self.critic_module = TargetDiscriminator(width=options.width).to(self.device)
        self.encoder: nn.Module | None = None
        if options.lambda_perceptual > 0:
            if perceptual_encoder is None:
                raise ValueError("the perceptual loss needs an identity encoder checkpoint")
            encoder, _ = load_checkpoint(perceptual_encoder, expect="identity_encoder")
            self.encoder = encoder.to(self.device).eval().requires_grad_(False)
        wrapped: nn.Module = self.model
        critic: nn.Module = self.critic_module
        if torch.distributed.is_initialized():
            ids = [self.device.index] if self.cuda else None
            wrapped = nn.parallel.DistributedDataParallel(self.model, device_ids=ids, find_unused_parameters=True)  # one decoder per call
            critic = nn.parallel.DistributedDataParallel(self.critic_module, device_ids=ids)
        self.wrapped, self.critic = wrapped, critic
        self.optimiser_g = torch.optim.Adam(self.model.parameters(), lr=options.lr, betas=(0.5, 0.999))
        self.optimiser_d = torch.optim.Adam(self.critic_module.parameters(), lr=options.lr, betas=(0.5, 0.999))
        self.random = torch.Generator().manual_seed(options.seed)
        self.step = 0
        self.skipped_steps = 0
        self.history: list[dict[str, float]] = []

    def draw_side(self, side: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's share of a fresh batch of one side, at crop size, in [-1, 1]: (the faces,
        the same faces warped, the autoencoder's input)."""
        per_rank, pool = self.options.batch // self.world, self.sides[side]
        index = self.share.randint(len(pool), per_rank, generator=self.random)
        # mirrored faces are more faces; the flip is the picture's, so input and goal both get it
        # (flipping only the warped input, as a first version did, asked the decoder to un-mirror)
        flip = (self.share.rand(per_rank, generator=self.random) < 0.5).to(self.device)
        faces = resize(to_generator(pool[index.to(self.device)]), self.options.crop_size)
        faces = torch.where(flip[:, None, None, None], faces.flip(-1), faces)
        return faces, random_warp(faces, self.options.warp_px, self.random, self.share)

    def _perceptual(self, produced: torch.Tensor, wanted: torch.Tensor) -> torch.Tensor:
        assert self.encoder is not None
        features = cast("torch.nn.Sequential", self.encoder.blocks)[:8]  # mid-level maps of the identity encoder
        stem = cast("torch.nn.Module", self.encoder.stem)
        a, b = features(stem(resize(produced, 112))), features(stem(resize(wanted, 112)))
        return (a.float() - b.float()).abs().mean()

    def train_step(self) -> dict[str, float]:
        options = self.options
        totals = dict.fromkeys(LOSS_KEYS, 0.0)
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cuda)
        for side in (0, 1):
            faces, warped = self.draw_side(side)
            self.critic_module.requires_grad_(False)
            with autocast:
                rgb, alpha = self.wrapped(warped, side)
                composite = alpha * rgb + (1 - alpha) * warped
                l1 = (composite.float() - faces).abs().mean() + 0.5 * (rgb.float() - faces).abs().mean()
                structural = (1 - ssim(composite, faces)) / 2
                mask = options.lambda_mask * alpha.float().mean() + options.lambda_tv * total_variation(alpha.float())
                adversarial = lsgan_loss(self.critic_module(composite, side), 1.0)
                perceptual = self._perceptual(composite, faces) if self.encoder is not None else composite.new_zeros((), dtype=torch.float32)
                total = l1 + structural + mask + options.lambda_adv * adversarial + options.lambda_perceptual * perceptual
            self.optimiser_g.zero_grad(set_to_none=True)
            total.backward()
            # Clipped: an unclipped run (bf16, batch 64, mixup, perceptual) jumped at ~2.7k steps
            # into a dead state (tanh saturated black, α = 1) it never left.
            if self._finite(total, self.model, options.max_grad_norm):
                self.optimiser_g.step()

            self.critic_module.requires_grad_(True)
            fake = composite.detach()
            with autocast:
                if options.mixup:
                    # Beta(0.2, 0.2) mixing weights, drawn through our generator so resume stays exact
                    seed = int(torch.randint(2**31 - 1, (1,), generator=self.random))
                    weights = np.random.default_rng(seed).beta(0.2, 0.2, len(faces) * self.world)[self.share.rows(len(faces))]
                    weight = torch.from_numpy(weights).float().to(self.device)
                    mixed = weight.view(-1, 1, 1, 1) * faces + (1 - weight.view(-1, 1, 1, 1)) * fake
                    critic_loss = lsgan_loss(self.critic(mixed, side), weight)
                else:
                    scores = self.critic(torch.cat([faces, fake]), side)
                    critic_loss = lsgan_loss(scores[: len(faces)], 1.0) + lsgan_loss(scores[len(faces) :], 0.0)
            self.optimiser_d.zero_grad(set_to_none=True)
            critic_loss.backward()
            if self._finite(critic_loss, self.critic_module, options.max_grad_norm):
                self.optimiser_d.step()
            values = torch.stack([total.float(), l1.float(), structural.float(), mask.float(), adversarial.float(), perceptual.float(), critic_loss.float()]).detach().cpu().tolist()
            for key, value in zip(LOSS_KEYS, values, strict=True):
                totals[key] += value / 2
        self.step += 1
        return totals

    def _finite(self, loss: torch.Tensor, module: nn.Module, max_norm: float) -> bool:
        """Clip the gradients; False (skip the step, count it) when the loss or the gradients are
        not finite. Under DDP every rank sees the same reduced gradients, so all skip together."""
        norm = torch.nn.utils.clip_grad_norm_(module.parameters(), max_norm)
        if bool(torch.isfinite(loss)) and bool(torch.isfinite(norm)):
            return True
        self.skipped_steps += 1
        return False

    def training_state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(), "critic": self.critic_module.state_dict(), "optimiser_g": self.optimiser_g.state_dict(),
            "optimiser_d": self.optimiser_d.state_dict(), "skipped_steps": self.skipped_steps,
        }

    def load_training_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.critic_module.load_state_dict(state["critic"])
        self.optimiser_g.load_state_dict(state["optimiser_g"])
        self.optimiser_d.load_state_dict(state["optimiser_d"])
        self.skipped_steps = state.get("skipped_steps", 0)

    @torch.no_grad()
    def write_samples(self) -> None:
        """Rows: other people, them as the target (decoder 0, composited), the target's own faces
        rebuilt."""
        self.model.eval()
        try:
            # spread over each side: a video's first frames are nearly one picture
            picks = [torch.linspace(0, len(side) - 1, min(8, len(side))).long().to(self.device) for side in self.sides]
            others = resize(to_generator(self.sides[1][picks[1]]), self.options.crop_size)
            own = resize(to_generator(self.sides[0][picks[0]]), self.options.crop_size)
            rgb, alpha = self.model(others, 0)
            rebuilt, own_alpha = self.model(own, 0)
            rows = [others, alpha * rgb + (1 - alpha) * others, own, own_alpha * rebuilt + (1 - own_alpha) * own]
        finally:
            self.model.train()
        self.output.mkdir(parents=True, exist_ok=True)
        write_grid(rows, self.output / "samples.png", labels=("other people", f"as the target, step {self.step}", "the target", "the target rebuilt"))

    def export(self) -> None:
        model = TargetAutoencoder(**self.options.model_hyperparameters())  # type: ignore[arg-type]
        model.load_state_dict(self.model.state_dict())
        training: dict[str, Any] = {
            "method": "faceswap-GAN: warped-input autoencoder, L1 + SSIM + mask regularisation + LSGAN" + (" + mixup" if self.options.mixup else "") + (" + perceptual" if self.encoder is not None else ""),
            "steps": self.step, "skipped_steps": self.skipped_steps, "batch_per_side": self.options.batch, "target_faces": len(self.sides[0]), "other_faces": len(self.sides[1]),
            "decoders": {"0": "the target person", "1": "everyone else (training only)"},
        }
        save_checkpoint(self.output / "target.safetensors", model.half().eval(), architecture="target_autoencoder", hyperparameters=self.options.model_hyperparameters(), training=training, template="arcface")
        with (self.output / "losses.jsonl").open("w") as handle:
            for row in self.history:
                handle.write(json.dumps(row) + "\n")
        plot_losses(self.history, self.output / "losses.png", "per-target autoencoder (faceswap-GAN losses)", LOSS_KEYS)
        self.write_samples()
