"""What each process runs under ``torchrun --standalone --nproc-per-node 2`` (CPU, gloo), for
tests/test_train_ddp.py: every trainer built in a real two-process group, its first batch drawn,
two steps taken, and its batch and weights written by each rank (``rank0.pt``, ``rank1.pt``) for
the test to compare across ranks and against one process. Usage: ddp_two_ranks.py FOLDER."""

from __future__ import annotations

import gc
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import torch


def weights(*modules: torch.nn.Module) -> list[torch.Tensor]:
    """The learnt parameters. Not the buffers: BatchNorm's running statistics are each rank's own
    between steps (DDP hands rank 0's to all before every forward pass, and rank 0 saves)."""
    return [value.detach().clone() for module in modules for value in module.parameters()]


def main(folder: Path) -> None:
    from realtime.train.aei import AEITrainer
    from realtime.train.distill import Distiller
    from realtime.train.target import TargetTrainer

    options = pickle.loads((folder / "options.pkl").read_bytes())
    faces = np.load(folder / "faces.npy")
    record: dict[str, object] = {}

    aei = AEITrainer(faces, folder / "encoder.safetensors", folder / "aei", options["aei"], "cpu")
    record["aei_start"] = weights(aei.generator, aei.discriminator)
    record["aei_batch"] = aei.draw_batch()
    for _ in range(2):
        aei.train_step()
    record["aei_weights"] = weights(aei.generator, aei.discriminator)

    target = TargetTrainer(faces[:8], faces[8:], folder / "target", options["target"], "cpu")
    record["target_start"] = weights(target.model, target.critic_module)
    record["target_batch"] = target.draw_side(0)
    for _ in range(2):
        target.train_step()
    record["target_weights"] = weights(target.model, target.critic_module)

    distiller = Distiller(faces, folder / "teacher.ckpt", folder / "distill", options["distill"], "cpu")
    record["distill_start"] = weights(distiller.student)
    record["distill_batch"] = distiller.draw_batch()
    for _ in range(2):
        distiller.train_step()
    record["distill_weights"] = weights(distiller.student)

    torch.save(record, folder / f"rank{os.environ['RANK']}.pt")
    # the DDP models must go before the group does: freed after it, gloo's threads never join
    del aei, target, distiller
    gc.collect()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
