"""``realtime train-identity``: our IdentityEncoder learns the teacher's embeddings (distillation).

Loss: 1 − cos(student(x), teacher(x)) on the same augmented face (flip, small scale/shift,
brightness and contrast), the teacher seeing its 112×96 view of the 112² crop. Runs the same on a
CPU (smoke), one GPU or several (torchrun: DDP, each rank its share of every batch); mixed
precision on CUDA; resumable (``state.pt`` holds model, optimiser, scaler, step and the random
generator, so a resumed run continues exactly); stops cleanly at ``--time-limit-s`` for chunked
GPU sessions. Writes ``identity.safetensors`` (FP16 copy for shipping), ``losses.jsonl`` and
``losses.png``.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from realtime.models.checkpoint import save_checkpoint
from realtime.models.identity import IdentityEncoder
from realtime.train.common import WHOLE_BATCH, BatchShare, ChunkedTrainer, distributed, plot_losses, rank_device
from realtime.train.options import DistillOptions
from realtime.train.teacher import load_teacher, teacher_view

log = logging.getLogger("realtime")


def normalise(faces_uint8: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) uint8 → (B, 3, H, W) float, (x − 127.5) / 128 as the teacher was trained."""
    return (faces_uint8.permute(0, 3, 1, 2).float() - 127.5) / 128.0


def augment(faces: torch.Tensor, generator: torch.Generator, share: BatchShare = WHOLE_BATCH) -> torch.Tensor:
    """Flip, ±5% scale, ±3 px shift, ±20% brightness/contrast; (B, 3, H, W) normalised, ``faces``
    being this rank's ``share`` of the batch. The numbers are drawn on ``generator``'s device: a CPU
    generator is reproducible on any device, a CUDA one keeps a GPU step free of host-to-device copies."""
    batch, _, height, width = faces.shape
    device = faces.device
    rand = lambda *shape: share.rand(batch, *shape, generator=generator).to(device)  # noqa: E731
    flip = rand() < 0.5
    faces = torch.where(flip[:, None, None, None], faces.flip(-1), faces)
    scale = 1 + (rand() - 0.5) * 0.1
    shift = rand(2) - 0.5
    theta = torch.zeros(batch, 2, 3, device=device)
    theta[:, 0, 0] = theta[:, 1, 1] = scale
    theta[:, 0, 2] = shift[:, 0] * (12 / width)  # ±3 px in grid units (2 / size per pixel)
    theta[:, 1, 2] = shift[:, 1] * (12 / height)
    grid = F.affine_grid(theta, list(faces.shape), align_corners=False)
    faces = F.grid_sample(faces, grid, padding_mode="border", align_corners=False)
    contrast = 1 + (rand(1, 1, 1) - 0.5) * 0.4
    brightness = (rand(1, 1, 1) - 0.5) * 0.4
    return faces * contrast + brightness


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean 1 − cosine between unit-norm embeddings (0 when they agree)."""
    return (1 - (F.normalize(student.float(), dim=1) * F.normalize(teacher.float(), dim=1)).sum(dim=1)).mean()


class Distiller(ChunkedTrainer):
    loss_keys = ("loss", "lr")

    def __init__(self, crops: np.ndarray, teacher_path: Path, output: Path, options: DistillOptions, device: str) -> None:
        self.rank, self.world = distributed()
        self.share = BatchShare.of(options.batch, self.rank, self.world)
        self.device = rank_device(device)
        self.options = options
        self.output = output
        torch.manual_seed(options.seed)
        self.faces = torch.from_numpy(crops).to(self.device)
        self.teacher = load_teacher(teacher_path).to(self.device)
        self.student = IdentityEncoder().to(self.device)
        model: torch.nn.Module = self.student
        if torch.distributed.is_initialized():
            model = torch.nn.parallel.DistributedDataParallel(self.student, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.model = model
        self.optimiser = torch.optim.AdamW(self.student.parameters(), lr=options.lr, weight_decay=options.weight_decay)
        self.cuda = self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.cuda)
        self.random = torch.Generator().manual_seed(options.seed)
        self.step = 0
        self.history: list[dict[str, float]] = []

    def learning_rate(self, step: int) -> float:
        """Linear warm-up over 100 steps, then cosine decay to 2% of the peak."""
        peak, total = self.options.lr, self.options.steps
        if step < 100:
            return peak * (step + 1) / 100
        return peak * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - 100) / max(1, total - 100)))))

    def draw_batch(self) -> torch.Tensor:
        """This rank's share of a fresh batch, augmented."""
        index = self.share.randint(len(self.faces), self.options.batch // self.world, generator=self.random)
        return augment(normalise(self.faces[index.to(self.device)]), self.random, self.share)

    def train_step(self) -> dict[str, float]:
        """One optimiser step on a fresh batch (this rank's share); returns the loss and the rate."""
        faces = self.draw_batch()
        rate = self.learning_rate(self.step)
        for group in self.optimiser.param_groups:
            group["lr"] = rate
        self.student.train()
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.cuda):
            with torch.no_grad():
                target = self.teacher(teacher_view(faces))
            loss = distillation_loss(self.model(faces), target)
        self.optimiser.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimiser)
        self.scaler.update()
        self.step += 1
        return {"loss": float(loss.detach()), "lr": rate}

    def training_state(self) -> dict[str, Any]:
        return {"student": self.student.state_dict(), "optimiser": self.optimiser.state_dict(), "scaler": self.scaler.state_dict()}

    def load_training_state(self, state: dict[str, Any]) -> None:
        self.student.load_state_dict(state["student"])
        self.optimiser.load_state_dict(state["optimiser"])
        self.scaler.load_state_dict(state["scaler"])

    def write_samples(self) -> None:
        """Nothing to show for an encoder: the ROC of eval-identity is its picture."""

    def export(self) -> None:
        """The shipped student (FP16 safetensors with its training record) and the loss curve."""
        self.output.mkdir(parents=True, exist_ok=True)
        student = IdentityEncoder()
        student.load_state_dict(self.student.state_dict())
        training = {"method": "distillation from MobileFaceNet (CASIA-WebFace) teacher, 1 - cos", "steps": self.step, "batch": self.options.batch, "faces": len(self.faces)}
        save_checkpoint(self.output / "identity.safetensors", student.half().eval(), architecture="identity_encoder", hyperparameters={"embed_dim": 128}, training=training)
        with (self.output / "losses.jsonl").open("w") as handle:
            for row in self.history:
                handle.write(json.dumps(row) + "\n")
        plot_losses(self.history, self.output / "losses.png", "identity distillation: 1 − cos(student, teacher)", ("loss",))


@torch.no_grad()
def embed(model: torch.nn.Module, crops: np.ndarray, device: str, *, teacher: bool = False, batch: int = 512) -> np.ndarray:
    """Unit-norm embeddings of (N, 112, 112, 3) uint8 crops (the teacher takes its 112×96 view)."""
    model = model.to(device).eval()
    out = []
    for start in range(0, len(crops), batch):
        faces = normalise(torch.from_numpy(crops[start : start + batch]).to(device))
        out.append(model(teacher_view(faces) if teacher else faces).float().cpu())
    return torch.cat(out).numpy()
