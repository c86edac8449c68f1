"""The reenactment refiner (issue 33, design b): its pairs, regions and synthetic second views,
a few training steps on the CPU, and the checkpoint it writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from realtime.errors import ConfigError
from realtime.models.checkpoint import load_checkpoint
from realtime.models.reenact_refiner import ReenactRefiner
from realtime.testing import make_face_landmarks
from realtime.train.data import FaceRecord, load_landmarks, save_landmarks
from realtime.train.options import ReenactOptions
from realtime.train.reenact import ReenactTrainer, identity_numbers, partners
from realtime.train.reenact_pairs import random_motion, second_view
from realtime.vision.reenact_torch import reenact, region_masks, target_context

SIZE = 64


def face_points(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([make_face_landmarks((32.0 + rng.uniform(-2, 2), 28.0), 16.0) + rng.normal(0, 0.6, (478, 2)) for _ in range(count)]).astype(np.float32)


def faces(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    base = np.stack([xs * 4, ys * 4, 128 + 50 * np.sin(xs / 5.0)], axis=-1)
    return np.clip(base[None] + rng.normal(0, 20, (count, 1, 1, 3)), 0, 255).astype(np.uint8)


def test_partners_pair_faces_of_one_person_and_never_unknown_people() -> None:
    identities = np.array([0, 1, 0, -1, 1, 0, -1])
    order, start, count = partners(identities)
    assert list(count) == [3, 2, 3, 1, 2, 3, 1]
    for face in range(len(identities)):
        run = order[start[face] : start[face] + count[face]]
        assert face in run and (identities[face] < 0 or set(identities[run]) == {identities[face]})
    assert list(identity_numbers(["b", None, "a", "b", ""])) == [1, -1, 0, 1, -1]


def test_region_masks_hold_the_face_and_its_eyes_and_mouth() -> None:
    points = torch.from_numpy(face_points(1))
    outline, holes = region_masks(points, SIZE)
    assert outline.shape == holes.shape == (1, 1, SIZE, SIZE)
    assert outline[0, 0, 32, 32] > 0.9 and outline[0, 0, 2, 2] == 0  # centre of the face, a corner
    # the layout's left eye at (24, 24.8), its mouth at (32, 40), a cheek at (22, 33)
    assert holes[0, 0, 25, 24] > 0.5 and holes[0, 0, 40, 32] > 0.5 and holes[0, 0, 33, 22] < 0.5
    context = target_context(torch.ones(1, 3, SIZE, SIZE) * torch.linspace(-1, 1, SIZE), outline)
    assert torch.allclose(context[..., 0, 0], torch.full((1, 3), -1.0))  # outside the face: the target itself


def test_a_second_view_warped_back_gives_the_photo_again() -> None:
    ys, xs = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    photo = (0.6 * torch.sin(xs / 2.0) * torch.cos(ys / 2.5)).expand(1, 3, SIZE, SIZE).float()  # fine texture: motion shows
    points = torch.from_numpy(face_points(1))
    generator = torch.Generator().manual_seed(3)
    seen, moved = second_view(photo, points, generator, strength=0.5)
    assert (moved - points).abs().mean() > 0.3 and (seen - photo).abs().mean() > 0.02
    back, _ = reenact(seen, moved, points, SIZE)
    outline, _ = region_masks(points, SIZE)
    inside = outline[0, 0] > 0.99
    # what is left is the relighting (a smooth gain), not the motion: far less than the moved view's error
    assert (back - photo).abs()[0][:, inside].mean() < 0.5 * (seen - photo).abs()[0][:, inside].mean()
    assert random_motion(points, SIZE, torch.Generator().manual_seed(3), strength=0.0).sub(points).abs().max() < 1e-4


def test_the_refiner_starts_as_the_warp_where_the_warp_has_pixels() -> None:
    net = ReenactRefiner(crop_size=SIZE, width=4, levels=3)
    warped = torch.rand(2, 3, SIZE, SIZE) * 1.6 - 0.8
    context = torch.zeros(2, 3, SIZE, SIZE)
    mask = torch.zeros(2, 1, SIZE, SIZE)
    mask[..., 10:50, 10:50] = 1
    (out,) = net(context, warped, mask)
    assert torch.allclose(out[..., 10:50, 10:50], warped[..., 10:50, 10:50], atol=1e-5)
    assert torch.allclose(out[..., :5, :5], context[..., :5, :5], atol=1e-5)
    with pytest.raises(ValueError, match="divisible"):
        ReenactRefiner(crop_size=100, levels=3)


def options(**overrides: object) -> ReenactOptions:
    base = {"crop_size": 128, "width": 4, "levels": 3, "steps": 2, "batch": 4, "log_every": 1, "sample_every": 0, "save_every": 1, "d_width": 8, "identity_views": 0.5}
    return ReenactOptions(**{**base, **overrides})  # type: ignore[arg-type]


def test_a_few_refiner_steps_train_log_and_export_a_checkpoint(tmp_path: Path, encoder_file: Path) -> None:
    from realtime.inference.spec import spec_from_checkpoint

    crops = np.stack([np.kron(f, np.ones((2, 2, 1), np.uint8)) for f in faces(6)])  # 128 px: the encoder's 112 needs room
    points = face_points(6) * 2 + 0.5
    trainer = ReenactTrainer(crops, points, np.array([0, 0, 1, 1, -1, -1]), encoder_file, tmp_path / "run", options(), "cpu")
    assert trainer.has_video_pairs
    first = trainer.train_step()
    assert set(first) == {"g", "rec", "perc", "id", "id2", "light", "adv", "d"} and all(np.isfinite(list(first.values())))
    assert trainer.run() == 2
    refiner, info = load_checkpoint(tmp_path / "run" / "reenact-refiner.safetensors", expect="reenact_refiner")
    assert isinstance(refiner, ReenactRefiner) and info.hyperparameters["width"] == 4
    assert (tmp_path / "run" / "samples.png").is_file() and (tmp_path / "run" / "losses.png").is_file()
    assert [json.loads(row)["step"] for row in (tmp_path / "run" / "losses.jsonl").read_text().splitlines()] == [2]  # run() logged the step it took
    spec = spec_from_checkpoint(tmp_path / "run" / "reenact-refiner.safetensors")  # the pipeline wears it: crops and landmarks in
    assert spec.takes_landmarks and spec.id_dim is None and [tuple(t.shape) for t in spec.example_inputs(2)] == [(2, 3, 128, 128), (2, 478, 2)]
    (out,) = spec.module(*spec.example_inputs(2))
    assert out.shape == (2, 3, 128, 128)


def test_video_pairs_take_another_frame_of_the_same_person(tmp_path: Path, encoder_file: Path) -> None:
    crops = np.stack([np.kron(f, np.ones((2, 2, 1), np.uint8)) for f in faces(6)])
    identities = np.array([0, 0, 0, 1, 1, -1])
    trainer = ReenactTrainer(crops, face_points(6) * 2, identities, encoder_file, tmp_path / "run", options(paired_prob=1.0, video_prob=1.0, batch=64), "cpu")
    batch = trainer.draw_batch()
    # a target with a partner gets that partner's pixels as its source; the one without gets its moved self
    targets = [int(np.argmin([np.abs(batch["targets"][i].numpy() - (crops[j].transpose(2, 0, 1) / 127.5 - 1)).max() for j in range(6)])) for i in range(64)]
    sources = [int(np.argmin([np.abs(batch["sources"][i].numpy() - (crops[j].transpose(2, 0, 1) / 127.5 - 1)).max() for j in range(6)])) for i in range(64)]
    for target, source in zip(targets, sources, strict=True):
        if identities[target] >= 0:
            assert source != target and identities[source] == identities[target]


def test_landmarks_load_scaled_and_a_dataset_without_them_says_how_to_fix_it(tmp_path: Path) -> None:
    dataset = tmp_path / "d"
    dataset.mkdir()
    (dataset / "manifest.json").write_text(json.dumps({"options": {"crop_size": 128}, "faces": [{"shard": "s", "file": "a"}, {"shard": "s", "file": "b"}]}))
    save_landmarks(dataset, np.stack([np.full((478, 2), 10.0), np.full((478, 2), 63.5)]))
    records = [FaceRecord(dataset, "s", "b", None, None, 1)]
    assert np.allclose(load_landmarks(records, 256), 127.5)  # (63.5 + ½)·2 − ½: edge-aligned, as the crops are resized
    (dataset / "landmarks.npy").unlink()
    with pytest.raises(ConfigError, match="prepare"):
        load_landmarks(records, 256)
