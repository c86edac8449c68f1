"""Per-target training: its losses on known inputs, the random warp, a CPU run that learns, exact
resume, the DDP path at world size 1, and `realtime train-target` end to end (also from a video)."""


import numpy as np
import pytest
import torch

from realtime.models.checkpoint import load_checkpoint
from realtime.testing import make_face_dataset
from realtime.train.target import TargetOptions, TargetTrainer, lsgan_loss, random_warp, ssim, total_variation

TINY = {"width": 4, "bottleneck": 16, "log_every": 2, "sample_every": 1000, "save_every": 1000}


def _faces(n: int = 8, seed: int = 0) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    return np.stack([cv2.GaussianBlur(rng.integers(0, 256, (112, 112, 3), dtype=np.uint8), (0, 0), 5) for _ in range(n)])


def test_ssim_is_one_for_equal_images_and_drops_with_noise():
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    assert ssim(images, images).item() == pytest.approx(1.0, abs=1e-4)
    noisy = (images + 0.5 * torch.randn_like(images)).clamp(-1, 1)
    assert ssim(images, noisy).item() < 0.8
    assert ssim(images, -images).item() < 0.0  # inverted structure: negative correlation


def test_total_variation_and_lsgan_on_known_inputs():
    assert total_variation(torch.ones(1, 1, 4, 4)).item() == 0.0
    stripes = torch.zeros(1, 1, 4, 4)
    stripes[..., ::2] = 1.0
    assert total_variation(stripes).item() == pytest.approx(1.0)  # every horizontal step is 1, vertical 0
    scores = torch.full((2, 1, 3, 3), 0.5)
    assert lsgan_loss(scores, 1.0).item() == pytest.approx(0.25) and lsgan_loss(scores, 0.0).item() == pytest.approx(0.25)
    assert lsgan_loss(scores, torch.tensor([0.5, 0.5])).item() == 0.0


def test_random_warp_keeps_shape_and_range_and_actually_warps():
    faces = torch.rand(4, 3, 64, 64) * 2 - 1
    warped = random_warp(faces, 0.05, torch.Generator().manual_seed(0))
    assert warped.shape == faces.shape and warped.min() >= -1 and warped.max() <= 1
    assert not torch.allclose(warped, faces) and torch.equal(random_warp(faces, 0.05, torch.Generator().manual_seed(0)), warped)
    assert torch.allclose(random_warp(faces, 0.0, torch.Generator().manual_seed(3)), faces, atol=1e-5)  # no warp, no change


def test_training_on_cpu_learns_to_rebuild_faces(tmp_path):
    trainer = TargetTrainer(_faces(), _faces(seed=1), tmp_path, TargetOptions(steps=30, batch=4, lr=2e-3, **TINY), "cpu")
    losses = [trainer.train_step() for _ in range(30)]
    assert all(np.isfinite(list(r.values())).all() for r in losses)
    assert np.mean([r["l1"] for r in losses[-6:]]) < np.mean([r["l1"] for r in losses[:6]])


def test_resume_continues_exactly_with_mixup(tmp_path):
    options = TargetOptions(steps=4, batch=2, mixup=True, **TINY)
    straight = TargetTrainer(_faces(), _faces(seed=1), tmp_path / "a", options, "cpu")
    straight.run()
    first = TargetTrainer(_faces(), _faces(seed=1), tmp_path / "b", TargetOptions(steps=2, batch=2, mixup=True, **TINY), "cpu")
    first.run(tmp_path / "parts")
    second = TargetTrainer(_faces(), _faces(seed=1), tmp_path / "b", options, "cpu")
    assert second.resume() and second.step == 2
    second.run()
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[key]), key
    model, info = load_checkpoint(tmp_path / "b" / "target.safetensors", expect="target_autoencoder")
    assert info.training["decoders"]["0"] == "the target person" and (tmp_path / "b" / "samples.png").is_file()
    assert any((tmp_path / "parts").glob("state.pt.part*"))


def test_perceptual_loss_uses_the_identity_encoder(tmp_path):
    from realtime.models.checkpoint import save_checkpoint
    from realtime.models.identity import IdentityEncoder

    encoder = tmp_path / "enc.safetensors"
    save_checkpoint(encoder, IdentityEncoder(width=0.25), architecture="identity_encoder", hyperparameters={"embed_dim": 128, "width": 0.25})
    trainer = TargetTrainer(_faces(), _faces(seed=1), tmp_path, TargetOptions(steps=1, batch=2, lambda_perceptual=0.1, **TINY), "cpu", perceptual_encoder=encoder)
    assert trainer.train_step()["perceptual"] > 0
    with pytest.raises(ValueError, match="identity encoder"):
        TargetTrainer(_faces(), _faces(seed=1), tmp_path, TargetOptions(lambda_perceptual=0.1, **TINY), "cpu")


def test_ddp_path_runs_with_world_size_one(tmp_path, gloo_world_of_one):
    trainer = TargetTrainer(_faces(), _faces(seed=1), tmp_path, TargetOptions(steps=2, batch=2, **TINY), "cpu")
    assert isinstance(trainer.wrapped, torch.nn.parallel.DistributedDataParallel)
    assert np.isfinite(list(trainer.train_step().values())).all()


def test_train_target_command_from_a_dataset_and_from_a_video(tmp_path, capsys):
    from conftest import has_face_model

    from realtime.cli import main

    others = make_face_dataset(tmp_path / "others", people=4, each=2)
    target = make_face_dataset(tmp_path / "person", people=1, each=16, seed=2)
    out = tmp_path / "run"
    assert main(["train-target", "--target", str(target), "--faces", str(others), "--output", str(out), "--steps", "2", "--batch", "2", "--device", "cpu"]) == 0
    assert (out / "target.safetensors").is_file() and (out / "losses.png").is_file()
    few = make_face_dataset(tmp_path / "few", people=1, each=3)
    assert main(["train-target", "--target", str(few), "--faces", str(others), "--output", str(tmp_path / "run2"), "--device", "cpu"]) != 0
    assert "longer video or more photos" in capsys.readouterr().err
    if not has_face_model():
        pytest.skip("no face_landmarker.task available offline for the video case")
    import cv2

    from realtime.testing import make_ground_truth_frame

    clip = tmp_path / "person.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30, (640, 480))
    for i in range(40):  # lighting changes every frame, so de-duplication keeps them
        frame = make_ground_truth_frame(i * 3, sensor_noise=0) * (0.5 + 0.5 * (i % 8) / 8)
        writer.write(cv2.cvtColor(frame.astype(np.uint8), cv2.COLOR_RGB2BGR))
    writer.release()
    video_run = tmp_path / "video-run"
    code = main(["train-target", "--target", str(clip), "--faces", str(others), "--output", str(video_run), "--steps", "1", "--batch", "2", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    assert (video_run / "target-faces" / "manifest.json").is_file()
