"""What every training loop here shares: the process group, atomic state files that can travel in
parts, the time budget of a chunk, and loss curves as PNG."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

PART_BYTES = 15 << 20  # under the 16 MiB a GPU machine hands back per file


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
