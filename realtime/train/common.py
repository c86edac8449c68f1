"""What every training loop here shares: the process group and each rank's share of a batch, atomic
state files that can travel in parts, the time budget of a chunk, and loss curves as PNG."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from realtime.errors import ConfigError

PART_BYTES = 15 << 20  # the default largest part of a state written in parts (--part-mib)


def distributed() -> tuple[int, int]:
    """(rank, world size): set up the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (torch.distributed.get_rank(), world) if torch.distributed.is_initialized() else (0, 1)


def rank_device(device: str) -> torch.device:
    """This rank's device: under torchrun each rank takes the GPU of its LOCAL_RANK."""
    if device == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        index = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return torch.device(device)


@dataclass(frozen=True)
class BatchShare:
    """This rank's rows of every global batch. Each rank draws the random numbers of the whole
    batch (which faces, which flips, warps and lighting) and keeps its own rows: no two ranks give
    their faces the same augmentation, the ranks' generators stay in step (a resume restores one
    state for all), and a world of one draws exactly what it always drew."""

    rank: int = 0
    world: int = 1

    @classmethod
    def of(cls, batch: int, rank: int, world: int) -> BatchShare:
        if batch % world:
            raise ConfigError(f"--batch {batch} does not split evenly over {world} processes", f"use a multiple of {world}, e.g. --batch {batch - batch % world or world}")
        return cls(rank, world)

    def rows(self, local: int) -> slice:
        """This rank's rows of a global batch of ``local`` rows a rank."""
        return slice(self.rank * local, (self.rank + 1) * local)

    def rand(self, local: int, *shape: int, generator: torch.Generator) -> torch.Tensor:
        """``torch.rand(local, *shape)`` for this rank's rows, drawn on ``generator``'s device."""
        return torch.rand(local * self.world, *shape, generator=generator, device=generator.device)[self.rows(local)]

    def randint(self, high: int, local: int, *, generator: torch.Generator) -> torch.Tensor:
        return torch.randint(high, (local * self.world,), generator=generator, device=generator.device)[self.rows(local)]


WHOLE_BATCH = BatchShare()  # one process: its share is the whole batch


def save_atomic(state: dict[str, Any], path: Path) -> None:
    """torch.save through a temporary name: a run killed mid-save keeps the previous state."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    torch.save(state, partial)
    partial.replace(path)


def split_file(path: Path, folder: Path, part_bytes: int = PART_BYTES) -> list[Path]:
    """Copy ``path`` into ``folder`` as ``<name>.part000``, ``.part001`` … of at most
    ``part_bytes`` each (a checkpoint larger than one file a machine may hand back)."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    with path.open("rb") as handle:
        for index, block in enumerate(iter(lambda: handle.read(part_bytes), b"")):
            part = folder / f"{path.name}.part{index:03d}"
            part.write_bytes(block)
            parts.append(part)
    return parts


def join_parts(path: Path) -> bool:
    """Reassemble ``path`` from ``<name>.partNNN`` files beside it when it is missing; True when
    ``path`` exists afterwards."""
    if path.is_file():
        return True
    parts = sorted(path.parent.glob(f"{path.name}.part[0-9][0-9][0-9]"))
    if not parts:
        return False
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    with partial.open("wb") as out:
        for part in parts:
            out.write(part.read_bytes())
    partial.replace(path)
    return True


class TimeBudget:
    """A chunk's wall-clock limit; ``None`` means no limit. Every rank must agree when it ends,
    or the ranks that go on would wait forever for the one that stopped: rank 0 decides."""

    def __init__(self, limit_s: float | None) -> None:
        self.limit_s = limit_s
        self.t0 = time.monotonic()

    def elapsed_s(self) -> float:
        return time.monotonic() - self.t0

    def spent(self, device: torch.device) -> bool:
        over = self.limit_s is not None and self.elapsed_s() > self.limit_s
        if torch.distributed.is_initialized():
            flag = torch.tensor([1.0 if over else 0.0], device=device)
            torch.distributed.broadcast(flag, src=0)
            over = bool(flag.item())
        return over


def plot_losses(history: Sequence[dict[str, float]], path: Path, title: str, keys: Sequence[str] = ("loss",), *, log_scale: bool = True) -> None:
    """One curve per key of ``history`` rows against their ``step``."""
    if not history:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    steps = [h["step"] for h in history]
    for key in keys:
        values = [h.get(key) for h in history]
        if any(v is not None for v in values):
            ax.plot(steps, [float("nan") if v is None else v for v in values], label=key)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if log_scale:
        ax.set_yscale("symlog", linthresh=1e-3)
    if len(keys) > 1:
        ax.legend(fontsize=8)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def mean_losses(rows: Sequence[dict[str, float] | torch.Tensor], keys: Sequence[str]) -> dict[str, float]:
    """Each loss averaged over the steps since the last log line (steps' dicts, or their losses
    as tensors in ``keys`` order: one read-back for all of them)."""
    if rows and isinstance(rows[0], torch.Tensor):
        return dict(zip(keys, torch.stack(list(rows)).float().mean(dim=0).tolist(), strict=True))  # type: ignore[arg-type]
    dicts: list[dict[str, float]] = list(rows)  # type: ignore[arg-type]
    return {k: sum(float(r[k]) for r in dicts) / len(dicts) for k in keys}


class ChunkedTrainer:
    """The loop the generator trainers share: steps until ``options.steps`` or the chunk's time
    is up; averaged losses logged with speed and ETA; sample grids, state saves and, on the way
    out, the export and the handed-back state parts. Subclasses set the attributes below in their
    ``__init__`` and provide the five methods that raise here."""

    loss_keys: tuple[str, ...] = ("loss",)
    architecture_options: tuple[str, ...] = ()  # options a resumed state must have been trained with
    rank: int
    device: torch.device
    output: Path
    options: Any  # a dataclass with steps, log_every, sample_every, save_every, time_limit_s
    random: torch.Generator
    step: int
    history: list[dict[str, float]]

    def train_step(self) -> dict[str, float]:
        raise NotImplementedError

    def advance(self) -> dict[str, float] | torch.Tensor:
        """One step for the loop: its losses as a dict, or as a tensor in ``loss_keys`` order left
        on the device (read back only when the loop logs, so the GPU is never waited for)."""
        return self.train_step()

    def training_state(self) -> dict[str, Any]:
        """Networks, optimisers and counters of this trainer, for ``state.pt``."""
        raise NotImplementedError

    def load_training_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def write_samples(self) -> None:
        raise NotImplementedError

    def export(self) -> None:
        raise NotImplementedError

    def state_path(self) -> Path:
        return self.output / "state.pt"

    def save_state(self) -> None:
        if self.rank != 0:
            return
        from dataclasses import asdict

        common = {"step": self.step, "random": self.random.get_state(), "history": self.history, "options": asdict(self.options)}
        save_atomic({**self.training_state(), **common}, self.state_path())

    def resume(self) -> bool:
        """Continue from ``state.pt`` (or its handed-back parts); False when there is none."""
        if self.rank == 0:
            join_parts(self.state_path())
        if torch.distributed.is_initialized():
            torch.distributed.barrier()  # the others read what rank 0 joined
        if not self.state_path().is_file():
            return False
        # on the CPU first: the random generator's state must stay a CPU tensor
        # tensors and plain values only (weights_only): a state file swapped for another can run no code
        state = torch.load(self.state_path(), map_location="cpu", weights_only=True)
        from dataclasses import fields

        # an option added after the state was saved reads as its default (what that run had)
        defaults = {f.name: f.default for f in fields(self.options)}
        saved = {k: state["options"].get(k, defaults.get(k)) for k in self.architecture_options}
        wanted = {k: getattr(self.options, k) for k in self.architecture_options}
        if saved != wanted:
            raise ValueError(f"{self.state_path()} was trained with {saved}, not {wanted}: use a new --output folder or the same options")
        self.load_training_state(state)
        self.random.set_state(state["random"])
        self.step, self.history = state["step"], state["history"]
        return True

    def run(self, parts_dir: Path | None = None, *, part_bytes: int = PART_BYTES) -> int:
        """Train until ``steps`` or the time limit; returns the step reached. ``parts_dir``: a folder
        to also write the state into, in parts of at most ``part_bytes``."""
        import logging

        log = logging.getLogger("realtime")
        options = self.options
        budget = TimeBudget(options.time_limit_s)
        start_step = self.step
        running: list[dict[str, float] | torch.Tensor] = []
        while self.step < options.steps:
            running.append(self.advance())
            if self.step % options.log_every == 0 or self.step == options.steps:
                elapsed = budget.elapsed_s()
                row = {"step": self.step, **mean_losses(running, self.loss_keys), "seconds": round(elapsed, 1)}
                self.history.append(row)
                running = []
                if self.rank == 0:
                    rate = (self.step - start_step) / max(elapsed, 1e-9)
                    losses = " ".join(f"{k} {row[k]:.4g}" for k in self.loss_keys)
                    log.info("[%d/%d] %s  %.1f steps/s  ETA %.0f s", self.step, options.steps, losses, rate, (options.steps - self.step) / max(rate, 1e-9))
            if self.rank == 0 and options.sample_every and self.step % options.sample_every == 0:
                self.write_samples()
            if self.step % options.save_every == 0:
                self.save_state()
            if self.step % options.log_every == 0 and budget.spent(self.device):
                if self.rank == 0:
                    log.info("time limit reached at step %d: state saved, resume with the same command", self.step)
                break
        self.save_state()
        if self.rank == 0:
            self.export()
            if parts_dir is not None:
                split_file(self.state_path(), parts_dir, part_bytes)
        return self.step
