"""AEI-Net training: FaceShifter's losses on known inputs, the discriminator's scales, a CPU run that
learns, exact resume (also from handed-back parts), the DDP path at world size 1, and the CLI."""

import os

import numpy as np
import pytest
import torch

from realtime.models.aei_net import AEINet
from realtime.models.checkpoint import load_checkpoint
from realtime.testing import make_face_dataset
from realtime.train.aei import AEIOptions, AEITrainer, compact_adam_state, expand_adam_state
from realtime.train.common import TimeBudget, join_parts, split_file
from realtime.train.discriminator import MultiScaleDiscriminator
from realtime.train.swap_losses import (
    attribute_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    identity_loss,
    reconstruction_loss,
)

TINY = {"attr_width": 4, "gen_width": 4, "max_mult": 2, "d_width": 8, "log_every": 2, "sample_every": 1000, "save_every": 1000}


def _faces(n: int = 12) -> np.ndarray:
    """Smooth random 'faces': a blurred noise image each, so reconstruction has something to learn."""
    import cv2

    rng = np.random.default_rng(0)
    return np.stack([cv2.GaussianBlur(rng.integers(0, 256, (112, 112, 3), dtype=np.uint8), (0, 0), 6) for _ in range(n)])


def test_hinge_losses_on_known_scores():
    real, fake = [torch.full((2, 1, 3, 3), 2.0)], [torch.full((2, 1, 3, 3), -2.0)]
    assert hinge_discriminator_loss(real, fake).item() == 0.0  # both beyond the margin
    assert hinge_discriminator_loss([torch.zeros(2, 1, 3, 3)] * 2, [torch.zeros(2, 1, 3, 3)] * 2).item() == pytest.approx(4.0)  # 2 scales × (1 + 1)
    assert hinge_generator_loss([torch.full((1, 1, 2, 2), 0.5), torch.full((1, 1, 1, 1), -1.5)]).item() == pytest.approx(1.0)


def test_identity_attribute_and_reconstruction_losses_on_known_inputs():
    a = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    assert identity_loss(a, a).item() == pytest.approx(0.0, abs=1e-6)
    assert identity_loss(a, torch.tensor([[0.0, 1.0], [0.0, -1.0]])).item() == pytest.approx(1.5)
    levels = [torch.zeros(1, 2, 2, 2), torch.zeros(1, 1, 4, 4)]
    assert attribute_loss(levels, levels).item() == 0.0
    assert attribute_loss([torch.ones(1, 2, 2, 2), torch.full((1, 1, 4, 4), 2.0)], levels).item() == pytest.approx(0.5 * (1 + 4))
    swapped, target = torch.zeros(3, 3, 4, 4), torch.ones(3, 3, 4, 4)
    assert reconstruction_loss(swapped, target, torch.tensor([True, False, False])).item() == pytest.approx(0.5)
    assert reconstruction_loss(swapped, target, torch.tensor([False, False, False])).item() == 0.0


def test_discriminator_scores_every_scale():
    scores = MultiScaleDiscriminator(scales=3, width=8)(torch.zeros(2, 3, 128, 128))
    assert [s.shape[-1] for s in scores] == [14, 6, 2] and all(s.shape[:2] == (2, 1) for s in scores)


def test_decode_of_the_attributes_is_the_forward_pass():
    torch.manual_seed(0)
    model = AEINet(crop_size=128, attr_width=4, gen_width=4, max_mult=2).eval()
    target, identity = torch.rand(2, 3, 128, 128) * 2 - 1, torch.nn.functional.normalize(torch.randn(2, 128), dim=1)
    assert torch.equal(model(target, identity), model.decode(model.attributes(target), identity))


def test_adam_state_without_first_moments_restores_exactly():
    parameter = torch.nn.Parameter(torch.randn(5))
    optimiser = torch.optim.Adam([parameter], betas=(0.0, 0.999))
    parameter.grad = torch.randn(5)
    optimiser.step()
    compact = compact_adam_state(optimiser.state_dict())
    assert "exp_avg" not in compact["state"][0] and "exp_avg_sq" in compact["state"][0]
    assert "exp_avg" in expand_adam_state(compact)["state"][0]
    kept = torch.optim.Adam([torch.nn.Parameter(torch.randn(5))], betas=(0.9, 0.999)).state_dict()
    assert compact_adam_state(kept) is kept  # only β1 = 0 makes the first moment disposable


def test_training_on_cpu_learns_to_reconstruct(encoder_file, tmp_path):
    options = AEIOptions(steps=40, batch=4, same_prob=1.0, lr=2e-3, **TINY)
    trainer = AEITrainer(_faces(), encoder_file, tmp_path, options, "cpu")
    losses = [trainer.train_step() for _ in range(40)]
    assert all(np.isfinite(list(row.values())).all() for row in losses)
    assert np.mean([r["rec"] for r in losses[-8:]]) < np.mean([r["rec"] for r in losses[:8]])


def test_resume_continues_exactly_also_from_handed_back_parts(encoder_file, tmp_path):
    options = AEIOptions(steps=4, batch=4, **TINY)
    straight = AEITrainer(_faces(8), encoder_file, tmp_path / "a", options, "cpu")
    straight.run()
    first = AEITrainer(_faces(8), encoder_file, tmp_path / "b", AEIOptions(steps=2, batch=4, **TINY), "cpu")
    first.run(tmp_path / "parts", part_bytes=1 << 20)
    parts = sorted((tmp_path / "parts").iterdir())
    assert parts and all(p.name.startswith("state.pt.part") for p in parts)
    assert all(p.stat().st_size <= 1 << 20 for p in parts)  # --part-mib's bound holds
    fresh = tmp_path / "c"  # a new machine: only the parts came along
    fresh.mkdir()
    for part in parts:
        (fresh / part.name).write_bytes(part.read_bytes())
    second = AEITrainer(_faces(8), encoder_file, fresh, options, "cpu")
    assert second.resume() and second.step == 2
    second.run()
    for model in ("generator", "discriminator"):
        ours, theirs = getattr(straight, model).state_dict(), getattr(second, model).state_dict()
        for key, value in ours.items():
            assert torch.equal(value, theirs[key]), (model, key)
    for name in ("aei-net.safetensors", "losses.png", "losses.jsonl", "samples.png"):
        assert (fresh / name).is_file(), name
    generator, info = load_checkpoint(fresh / "aei-net.safetensors", expect="aei_net")
    assert info.crop_size == 128 and info.training["steps"] == 4 and info.template == "arcface"


def test_resume_refuses_a_state_of_another_architecture(encoder_file, tmp_path):
    AEITrainer(_faces(8), encoder_file, tmp_path, AEIOptions(steps=1, batch=2, **TINY), "cpu").run()
    other = AEITrainer(_faces(8), encoder_file, tmp_path, AEIOptions(steps=2, batch=2, **{**TINY, "gen_width": 8}), "cpu")
    with pytest.raises(ValueError, match="new --output folder"):
        other.resume()


def test_split_and_join_round_trip(tmp_path):
    payload = os.urandom(2500)
    (tmp_path / "big.bin").write_bytes(payload)
    parts = split_file(tmp_path / "big.bin", tmp_path / "out", part_bytes=1000)
    assert [p.stat().st_size for p in parts] == [1000, 1000, 500]
    assert join_parts(tmp_path / "out" / "big.bin") and (tmp_path / "out" / "big.bin").read_bytes() == payload
    assert not join_parts(tmp_path / "nothing.bin")


def test_ddp_path_runs_with_world_size_one(encoder_file, tmp_path, gloo_world_of_one):
    trainer = AEITrainer(_faces(8), encoder_file, tmp_path, AEIOptions(steps=2, batch=2, **TINY), "cpu")
    assert isinstance(trainer.swap, torch.nn.parallel.DistributedDataParallel)
    assert isinstance(trainer.critic, torch.nn.parallel.DistributedDataParallel)
    assert np.isfinite(list(trainer.train_step().values())).all()
    device = torch.device("cpu")
    assert TimeBudget(0.0).spent(device) and not TimeBudget(None).spent(device)  # agreed through the group


def test_train_aei_command_runs_on_112_px_or_larger_crops_and_refuses_smaller(encoder_file, tmp_path, capsys):
    from realtime.cli import main

    faces = make_face_dataset(tmp_path / "faces")
    out = tmp_path / "run"
    code = main(["train-aei", "--faces", str(faces), "--identity-encoder", str(encoder_file), "--output", str(out), "--steps", "2", "--batch", "2", "--device", "cpu", "--save-parts", str(tmp_path / "parts"), "--part-mib", "1"])
    assert code == 0 and (out / "aei-net.safetensors").is_file() and (out / "samples.png").is_file()
    assert any((tmp_path / "parts").glob("state.pt.part*"))
    larger = make_face_dataset(tmp_path / "faces128", size=128)  # targets keep 128 px of detail; sources go to 112
    code = main(["train-aei", "--faces", str(larger), "--identity-encoder", str(encoder_file), "--output", str(tmp_path / "run2"), "--steps", "1", "--batch", "2", "--device", "cpu"])
    assert code == 0 and (tmp_path / "run2" / "aei-net.safetensors").is_file()
    small = make_face_dataset(tmp_path / "faces96", size=96)
    assert main(["train-aei", "--faces", str(small), "--identity-encoder", str(encoder_file), "--output", str(tmp_path / "run3"), "--device", "cpu"]) != 0
    assert "96 px crops" in capsys.readouterr().err


def test_merge_datasets_renumbers_reencodes_and_keeps_labels(tmp_path):
    from realtime.train.data import face_records, load_crops, merge_datasets

    a = make_face_dataset(tmp_path / "a", people=2, each=2)
    b = make_face_dataset(tmp_path / "b", people=1, each=3, seed=1)
    assert merge_datasets([a, b], tmp_path / "ab", jpeg_quality=80) == 7
    records = face_records([tmp_path / "ab"])
    assert [r.identity for r in records] == ["person0"] * 2 + ["person1"] * 2 + ["person0"] * 3
    assert len({r.file for r in records}) == 7 and load_crops(records).shape == (7, 112, 112, 3)
    with pytest.raises(FileExistsError):
        merge_datasets([a], tmp_path / "ab")


def test_a_phase_clock_accounts_for_the_whole_step_on_the_cpu(tmp_path):
    import time

    from realtime.train.phases import NullClock, PhaseClock

    clock = PhaseClock(torch.device("cpu"))
    with clock.phase("a"):
        time.sleep(0.02)
    with clock.phase("b"):
        pass
    clock.end_step()
    summary = clock.summary()
    assert set(summary) == {"a", "b"} and summary["a"] >= 19 and summary["b"] < summary["a"]
    with NullClock().phase("anything"):
        pass


def test_the_training_step_reports_its_phases(encoder_file, tmp_path):
    import time

    from realtime.train.phases import PhaseClock

    trainer = AEITrainer(_faces(8), encoder_file, tmp_path, AEIOptions(steps=2, batch=2, **TINY), "cpu")
    trainer.train_step()  # the first step pays one-time costs outside the measure
    trainer.clock = PhaseClock(trainer.device)
    t0 = time.perf_counter()
    trainer.train_step()
    step_ms = (time.perf_counter() - t0) * 1000
    phases = trainer.clock.summary()
    assert {"generator forward and losses", "generator backward", "discriminator backward", "data and augmentation"} <= set(phases)
    assert 0.5 * step_ms <= sum(phases.values()) <= step_ms * 1.01


def test_larger_crops_feed_the_encoder_at_112_and_the_generator_at_its_size(encoder_file, tmp_path):
    crops = np.random.default_rng(0).integers(0, 256, (8, 256, 256, 3), dtype=np.uint8)
    trainer = AEITrainer(crops, encoder_file, tmp_path, AEIOptions(steps=1, batch=2, **{**TINY, "crop_size": 256}), "cpu")
    sources, targets, _ = trainer.draw_batch()
    assert sources.shape[-1] == 112 and targets.shape[-1] == 256
    assert np.isfinite(list(trainer.train_step().values())).all()
    with pytest.raises(ValueError, match="S ≥ 112"):
        AEITrainer(crops[:, :100, :100], encoder_file, tmp_path, AEIOptions(steps=1, batch=2, **TINY), "cpu")


def test_the_loop_reads_losses_back_only_when_it_logs_and_averages_them_exactly(encoder_file, tmp_path):
    """``advance`` leaves the losses on the device; the loop's averages equal the per-step values'."""
    from realtime.train.common import mean_losses

    options = AEIOptions(steps=4, batch=2, **{**TINY, "log_every": 4})
    stepped = AEITrainer(_faces(8), encoder_file, tmp_path / "a", options, "cpu")
    rows = [stepped.train_step() for _ in range(4)]
    looped = AEITrainer(_faces(8), encoder_file, tmp_path / "b", options, "cpu")
    looped.run()
    expected = mean_losses(rows, looped.loss_keys)
    assert looped.history[-1]["step"] == 4
    for key in looped.loss_keys:
        assert looped.history[-1][key] == pytest.approx(expected[key], rel=1e-5), key
    assert isinstance(AEITrainer(_faces(8), encoder_file, tmp_path / "c", options, "cpu").advance(), torch.Tensor)


@pytest.mark.gpu
def test_the_compiled_step_matches_the_eager_step_on_the_gpu(encoder_file, tmp_path):
    """The compiled objectives compute FaceShifter's losses as the eager ones do (bf16 noise)."""
    losses = {}
    for compiled in (False, True):
        options = AEIOptions(steps=3, batch=8, compile=compiled, **TINY)
        trainer = AEITrainer(_faces(16), encoder_file, tmp_path / str(compiled), options, "cuda")
        losses[compiled] = [trainer.train_step() for _ in range(3)]
    for eager, compiled_row in zip(losses[False], losses[True], strict=True):
        for key in ("att", "id", "rec"):
            assert compiled_row[key] == pytest.approx(eager[key], rel=0.1, abs=2e-3), key


def test_the_discriminator_exposes_its_features_and_the_same_scores():
    torch.manual_seed(0)
    critic = MultiScaleDiscriminator(scales=2, width=8).eval()
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    features, scores = critic.features_and_scores(images)
    assert len(features) == 2 * 4 and [f.shape[1] for f in features[:4]] == [8, 16, 32, 64]
    # the scores are each PatchGAN's plain forward on the image and on its 2× average-pooled copy
    pooled = torch.nn.functional.avg_pool2d(images, 3, stride=2, padding=1, count_include_pad=False)
    for ours, patch_gan, level in zip(scores, critic.scales, (images, pooled), strict=True):
        assert torch.equal(ours, patch_gan(level))
    net = critic.scales[0].net
    assert torch.equal(features[0], net[:2](images)) and torch.equal(features[1], net[:5](images))  # after each LeakyReLU


def test_feature_matching_and_masked_mean_on_known_inputs():
    from realtime.train.swap_losses import feature_matching_loss, masked_mean

    real = [torch.zeros(1, 2, 2, 2), torch.ones(1, 1, 3, 3)]
    assert feature_matching_loss(real, real).item() == 0.0
    fake = [torch.full((1, 2, 2, 2), 0.5, requires_grad=True), torch.full((1, 1, 3, 3), 3.0, requires_grad=True)]
    loss = feature_matching_loss(fake, real)
    assert loss.item() == pytest.approx(0.5 + 2.0)
    loss.backward()
    assert all(f.grad is not None for f in fake)
    assert masked_mean(torch.tensor([1.0, 3.0, 5.0]), torch.tensor([True, False, True])).item() == pytest.approx(3.0)
    assert masked_mean(torch.tensor([1.0]), torch.tensor([False])).item() == 0.0


def test_the_optional_terms_are_zero_when_off_and_pull_on_the_generator_when_on(encoder_file, tmp_path):
    plain = AEITrainer(_faces(8), encoder_file, tmp_path / "a", AEIOptions(steps=1, batch=4, same_prob=1.0, **TINY), "cpu")
    row = plain.train_step()
    assert row["fm"] == row["id2"] == row["perc"] == 0.0
    options = AEIOptions(steps=1, batch=4, same_prob=1.0, lambda_fm=10.0, lambda_perceptual=1.0, **TINY)
    trainer = AEITrainer(_faces(8), encoder_file, tmp_path / "b", options, "cpu")
    sources, targets, same = trainer.draw_batch()
    trainer.discriminator.requires_grad_(False)
    total, _, terms = trainer._generator_objective(sources, targets, same)
    fm, perc = terms[4], terms[6]
    assert fm.item() > 0 and perc.item() > 0 and np.isfinite(total.item())
    grads = torch.autograd.grad(fm + perc, list(trainer.generator.parameters()), allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    assert "10 feature matching + 1 perceptual" in trainer.method()


def test_a_second_identity_encoder_needs_its_file(encoder_file, tmp_path):
    from realtime.errors import ConfigError

    with pytest.raises(ConfigError, match="--second-identity-encoder"):
        AEITrainer(_faces(8), encoder_file, tmp_path, AEIOptions(steps=1, batch=2, lambda_id2=1.0, **TINY), "cpu")
    with pytest.raises(ConfigError, match="--lambda-fm"):
        AEIOptions(lambda_fm=-1.0)


def test_the_teacher_as_a_second_identity_judge(encoder_file, tmp_path):
    from conftest import shared_dir

    teacher = shared_dir() / "models" / "teacher_mobilefacenet_casia_112x96.ckpt" if shared_dir() else None
    if teacher is None or not teacher.is_file():
        pytest.skip("needs ../shared/models/teacher_mobilefacenet_casia_112x96.ckpt")
    options = AEIOptions(steps=1, batch=4, lambda_id2=1.0, **TINY)
    trainer = AEITrainer(_faces(8), encoder_file, tmp_path, options, "cpu", second_encoder_path=teacher)
    row = trainer.train_step()
    assert 0 < row["id2"] <= 2 and all(not p.requires_grad for p in trainer.second_encoder.parameters())


def test_train_aei_refuses_lambda_id2_without_its_encoder_before_loading_anything(tmp_path, capsys):
    from realtime.cli import main

    code = main(["train-aei", "--faces", str(tmp_path / "missing"), "--identity-encoder", str(tmp_path / "e"), "--output", str(tmp_path / "run"), "--lambda-id2", "1", "--device", "cpu"])
    assert code == 2 and "--second-identity-encoder" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_the_export_can_store_int8_weights(encoder_file, tmp_path):
    from realtime.models.checkpoint import read_checkpoint_info

    AEITrainer(_faces(8), encoder_file, tmp_path, AEIOptions(steps=1, batch=2, weight_storage="int8", **TINY), "cpu").run()
    info = read_checkpoint_info(tmp_path / "aei-net.safetensors")
    assert info.int8_weights and info.format_version == 2
    generator, _ = load_checkpoint(tmp_path / "aei-net.safetensors", expect="aei_net")
    assert isinstance(generator, AEINet)


def test_the_contrastive_identity_loss_prefers_the_source_over_the_target():
    from realtime.train.swap_losses import contrastive_identity_loss

    generator = torch.Generator().manual_seed(0)
    sources, targets = torch.randn(6, 32, generator=generator), torch.randn(6, 32, generator=generator)
    keep = torch.zeros(6, dtype=torch.bool)
    like_source = contrastive_identity_loss(sources + 0.1 * targets, sources, targets, keep, 0.1)
    like_target = contrastive_identity_loss(targets + 0.1 * sources, sources, targets, keep, 0.1)
    assert like_source.item() < 0.1 < 2.0 < like_target.item()
    # the target alone is a negative: with no other source in the batch it still pulls away
    single = contrastive_identity_loss(targets[:1], sources[:1], targets[:1], keep[:1], 0.1)
    assert single.item() > 1.0


def test_the_contrastive_identity_loss_skips_same_pairs_and_copies_of_the_positive():
    from realtime.train.swap_losses import contrastive_identity_loss

    generator = torch.Generator().manual_seed(1)
    sources, targets = torch.randn(4, 16, generator=generator), torch.randn(4, 16, generator=generator)
    same = torch.tensor([False, True, False, False])
    swapped = sources.clone().requires_grad_(True)
    loss = contrastive_identity_loss(swapped, sources, targets, same, 0.1)
    loss.backward()
    assert swapped.grad[1].abs().sum() == 0 and swapped.grad[0].abs().sum() > 0  # the same sample adds nothing
    moved = sources.clone()
    moved[1] = targets[2]  # whatever a masked sample's swap is, the loss is the same
    assert contrastive_identity_loss(moved, sources, targets, same, 0.1).item() == pytest.approx(loss.item())
    assert contrastive_identity_loss(swapped, sources, targets, torch.ones(4, dtype=torch.bool), 0.1).item() == 0.0
    # rows 0 and 2 drew the same face as their source: each is not the other's negative
    twins = sources.clone()
    twins[2] = twins[0]
    ids = torch.tensor([7, 8, 7, 9])
    counted = contrastive_identity_loss(twins, twins, targets, torch.zeros(4, dtype=torch.bool), 0.1)
    skipped = contrastive_identity_loss(twins, twins, targets, torch.zeros(4, dtype=torch.bool), 0.1, source_ids=ids, target_ids=torch.tensor([1, 2, 3, 4]))
    assert skipped.item() < 0.01 and counted.item() > 0.3  # log 2 / 2 rows of 4 if the twin counted
    # a pair drawn with its target's face as the source (equal ids) is left out, like `same`
    assert contrastive_identity_loss(twins, twins, targets, torch.zeros(4, dtype=torch.bool), 0.1, source_ids=ids, target_ids=ids).item() == 0.0


def test_views_and_hard_negatives_train_on_the_cpu_and_are_logged(encoder_file, tmp_path):
    options = AEIOptions(steps=2, batch=4, identity_views=1.0, lambda_hard_negative=1.0, **TINY)
    trainer = AEITrainer(_faces(8), encoder_file, tmp_path, options, "cpu")
    trainer.run()
    row = trainer.history[-1]
    assert row["step"] == 2 and row["hneg"] > 0 and np.isfinite([row[k] for k in trainer.loss_keys]).all()
    assert "hneg" in (tmp_path / "losses.jsonl").read_text()
    ours, second = trainer.draw_views()
    assert ours is not None and second is None  # no second encoder: no second view drawn
    assert "contrastive identity" in trainer.method() and "random view" in trainer.method()
    # the hard-negative term pulls on the generator, and the view sits between it and the encoder
    sources, targets, same, source_ids, target_ids = trainer.draw_batch_with_ids()
    views = trainer.draw_views()
    trainer.discriminator.requires_grad_(False)
    _, _, terms = trainer._generator_objective(sources, targets, same, source_ids, target_ids, views)
    grads = torch.autograd.grad(terms[7] + terms[2], list(trainer.generator.parameters()), allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    _, _, clean = trainer._generator_objective(sources, targets, same, source_ids, target_ids)
    assert clean[2].item() != pytest.approx(terms[2].item(), abs=1e-6)  # the id loss read the view, not the swap
    with pytest.raises(ValueError, match="--identity-views"):
        AEIOptions(identity_views=2.0)
    with pytest.raises(ValueError, match="--hard-negative-temperature"):
        AEIOptions(hard_negative_temperature=0.0)


def test_views_off_draw_exactly_what_a_run_without_them_drew(encoder_file, tmp_path):
    """The new options at their defaults change nothing: no views drawn, the random stream and
    the losses as before, hneg 0."""
    options = AEIOptions(steps=1, batch=4, **TINY)
    trainer = AEITrainer(_faces(8), encoder_file, tmp_path, options, "cpu")
    state = trainer.random.get_state()
    assert trainer.draw_views() == (None, None) and torch.equal(trainer.random.get_state(), state)
    assert trainer.train_step()["hneg"] == 0.0


def test_the_second_encoder_judges_its_own_view(encoder_file, tmp_path):
    from conftest import shared_dir

    teacher = shared_dir() / "models" / "teacher_mobilefacenet_casia_112x96.ckpt" if shared_dir() else None
    if teacher is None or not teacher.is_file():
        pytest.skip("needs ../shared/models/teacher_mobilefacenet_casia_112x96.ckpt")
    options = AEIOptions(steps=1, batch=4, lambda_id2=1.0, identity_views=0.5, **TINY)
    trainer = AEITrainer(_faces(8), encoder_file, tmp_path, options, "cpu", second_encoder_path=teacher)
    ours, second = trainer.draw_views()
    assert ours is not None and second is not None and not torch.equal(ours.image_from_view, second.image_from_view)
    assert 0 < trainer.train_step()["id2"] <= 2
