"""The trainers in a real two-process group (torchrun, CPU, gloo): each rank gets its own rows of
the batch one process would have drawn (faces and augmentation alike), and both ranks end with the
same weights."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from realtime.errors import ConfigError
from realtime.train.aei import AEITrainer
from realtime.train.common import BatchShare
from realtime.train.distill import Distiller
from realtime.train.options import AEIOptions, DistillOptions, TargetOptions
from realtime.train.target import TargetTrainer
from realtime.train.teacher import TeacherMobileFaceNet

OPTIONS = {
    "aei": AEIOptions(steps=2, batch=4, attr_width=4, gen_width=4, max_mult=2, d_width=8, log_every=2, sample_every=1000, save_every=1000),
    "target": TargetOptions(steps=2, batch=4, width=4, bottleneck=16, mixup=True, log_every=2, sample_every=1000, save_every=1000),
    "distill": DistillOptions(steps=2, batch=4),
}


def _faces(n: int = 16) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(0)
    return np.stack([cv2.GaussianBlur(rng.integers(0, 256, (112, 112, 3), dtype=np.uint8), (0, 0), 4) for _ in range(n)])


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """One torchrun launch of tests/ddp_two_ranks.py for every test here (two Python processes
    with torch cost seconds each on a busy two-core box)."""
    from realtime.models.checkpoint import save_checkpoint
    from realtime.models.identity import IdentityEncoder

    folder = tmp_path_factory.mktemp("ddp")
    np.save(folder / "faces.npy", _faces())
    torch.manual_seed(2)
    save_checkpoint(folder / "encoder.safetensors", IdentityEncoder(width=0.25).eval(), architecture="identity_encoder", hyperparameters={"embed_dim": 128, "width": 0.25})
    torch.manual_seed(1)
    torch.save({"epoch": 0, "net_state_dict": TeacherMobileFaceNet().state_dict()}, folder / "teacher.ckpt")
    (folder / "options.pkl").write_bytes(pickle.dumps(OPTIONS))
    worker = Path(__file__).with_name("ddp_two_ranks.py")
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(worker), str(folder)]
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder, [torch.load(folder / f"rank{rank}.pt", weights_only=True) for rank in (0, 1)]


def test_each_rank_draws_its_own_rows_of_the_one_process_batch(two_ranks):
    folder, ranks = two_ranks
    faces = _faces()
    one = {
        "aei": AEITrainer(faces, folder / "encoder.safetensors", folder / "one-aei", OPTIONS["aei"], "cpu").draw_batch(),
        "target": TargetTrainer(faces[:8], faces[8:], folder / "one-target", OPTIONS["target"], "cpu").draw_side(0),
        "distill": (Distiller(faces, folder / "teacher.ckpt", folder / "one-distill", OPTIONS["distill"], "cpu").draw_batch(),),
    }
    for kind, whole in one.items():
        for index, expected in enumerate(whole):
            drawn = [rank[f"{kind}_batch"] if kind == "distill" else rank[f"{kind}_batch"][index] for rank in ranks]
            assert torch.allclose(torch.cat(drawn).float(), expected.float(), atol=1e-5), (kind, index)
            # and the two ranks took different rows, not both the first
            if expected.dtype.is_floating_point and index == 0:
                assert not torch.allclose(drawn[0], drawn[1]), kind


def test_both_ranks_end_with_the_same_weights_after_learning(two_ranks):
    _, ranks = two_ranks
    for kind in OPTIONS:
        assert _same(ranks[0][f"{kind}_start"], ranks[1][f"{kind}_start"]), kind
        assert _same(ranks[0][f"{kind}_weights"], ranks[1][f"{kind}_weights"]), kind
        assert not _same(ranks[0][f"{kind}_start"], ranks[0][f"{kind}_weights"]), kind


def test_a_batch_that_does_not_split_over_the_processes_is_refused():
    assert BatchShare.of(8, 1, 4) == BatchShare(1, 4)
    with pytest.raises(ConfigError, match="--batch 30 does not split evenly over 4 processes: use a multiple of 4, e.g. --batch 28"):
        BatchShare.of(30, 0, 4)


def test_a_share_is_its_rows_of_the_whole_draw():
    whole = torch.rand(6, 2, generator=torch.Generator().manual_seed(3))
    shares = [BatchShare(rank, 3).rand(2, 2, generator=torch.Generator().manual_seed(3)) for rank in range(3)]
    assert torch.equal(torch.cat(shares), whole)
    assert BatchShare(2, 3).rows(4) == slice(8, 12)
