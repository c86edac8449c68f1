from __future__ import annotations

import gc
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from realtime.models.weights import FACE_LANDMARKER_NAME, FACE_LANDMARKER_SHA256, cache_dir, sha256_file

# One intra-op thread for torch (OpenMP) in tests: its workers spin at barriers, and when another
# process takes a core from one of them every step waits for it. With two busy processes beside
# it on a 2-core machine, one 30-step CPU training test took 114 s with two threads and 27 s with
# one (17 s either way when the machine is idle). Set before torch loads.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    """The workplace's shared data (REALTIME_SHARED, else ../shared beside the repo), if present."""
    path = Path(os.environ.get("REALTIME_SHARED", REPO.parent / "shared"))
    return path if path.is_dir() else None


@pytest.fixture
def shared() -> Path:
    path = shared_dir()
    if path is None:
        pytest.skip("../shared is absent (set REALTIME_SHARED to its path to run this test)")
    return path


# The user's cache as the product finds it (``make demo`` leaves the landmarker there), read before
# the session fixture below points REALTIME_CACHE at a temporary folder.
USER_CACHE = cache_dir()


def offline_face_landmarker() -> Path | None:
    """The landmarker the tests may use without downloading: $REALTIME_FACE_LANDMARKER, else
    ../shared's copy, else the verified copy ``make demo`` cached (the product's cache, checked
    against the product's checksum; never removed or written here)."""
    if os.environ.get("REALTIME_FACE_LANDMARKER"):
        return Path(os.environ["REALTIME_FACE_LANDMARKER"])
    shared = shared_dir()
    if shared is not None and (shared / "models" / FACE_LANDMARKER_NAME).is_file():
        return shared / "models" / FACE_LANDMARKER_NAME
    cached = USER_CACHE / FACE_LANDMARKER_NAME
    if cached.is_file() and sha256_file(cached) == FACE_LANDMARKER_SHA256:
        return cached
    return None


@pytest.fixture(autouse=True, scope="session")
def _hermetic_models(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests never download: the landmarker comes from ../shared or the user's cache when it is
    there, and nothing is written to the user's cache."""
    model = offline_face_landmarker()
    os.environ["REALTIME_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    if model is not None and not os.environ.get("REALTIME_FACE_LANDMARKER"):
        os.environ["REALTIME_FACE_LANDMARKER"] = str(model)


def has_face_model() -> bool:
    return offline_face_landmarker() is not None


NEEDS_FACE_MODEL = "needs MediaPipe's face_landmarker.task offline: run `make demo` once (it caches it), or set REALTIME_FACE_LANDMARKER or REALTIME_SHARED"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except Exception:  # noqa: BLE001
        has_gpu = False
    if has_gpu:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def gloo_world_of_one(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A one-process gloo group, for the trainers' DDP path. Torn down after the test's models are
    gone: a DDP model freed after ``destroy_process_group`` joined gloo's threads for ever in its
    destructor (a CPU test run hung there for 17 minutes)."""
    import torch.distributed

    with socket.socket() as probe:  # a free port: a fixed one may still be in TIME_WAIT from the last test
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setitem(os.environ, "MASTER_ADDR", "127.0.0.1")
    monkeypatch.setitem(os.environ, "MASTER_PORT", str(port))
    torch.distributed.init_process_group("gloo", rank=0, world_size=1)
    yield
    gc.collect()  # the test's trainer (and its DDP reducers) may sit in a reference cycle
    torch.distributed.destroy_process_group()


@pytest.fixture()
def encoder_file(tmp_path: Path) -> Path:
    """A tiny identity encoder with fixed random weights, saved as a checkpoint (the trainers' tests)."""
    import torch

    from realtime.models.checkpoint import save_checkpoint
    from realtime.models.identity import IdentityEncoder

    torch.manual_seed(2)
    path = tmp_path / "encoder.safetensors"
    save_checkpoint(path, IdentityEncoder(width=0.25).eval(), architecture="identity_encoder", hyperparameters={"embed_dim": 128, "width": 0.25})
    return path


@pytest.fixture
def target_checkpoint(tmp_path: Path) -> Path:
    """A small per-target autoencoder (128-px crops, random weights): a generator that stands in
    where what is judged is what reaches the viewer, not how the swap looks."""
    import torch

    from realtime.models.checkpoint import save_checkpoint
    from realtime.models.target_autoencoder import TargetAutoencoder

    torch.manual_seed(0)
    path = tmp_path / "target.safetensors"
    hyper = {"crop_size": 128, "identities": 2, "width": 4, "bottleneck": 16}
    save_checkpoint(path, TargetAutoencoder(**hyper), architecture="target_autoencoder", hyperparameters=hyper)
    return path
