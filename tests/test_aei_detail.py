"""The 256-px AEI-Net made of a 128-px core and a detail stage: it starts as the core, upsampled;
a trained 128-px model loads as its core; training starts from given weights and compares only the
core's attribute levels; crops of several sizes train together at the largest."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from realtime.errors import ConfigError
from realtime.models.aei_net import AEINet, core_state
from realtime.models.checkpoint import load_checkpoint, save_checkpoint
from realtime.testing import make_face_dataset
from realtime.train.aei import DISCRIMINATOR_FILE, AEIOptions, AEITrainer, SwapWithAttributes

WIDTHS = {"attr_width": 4, "gen_width": 4, "max_mult": 2}
TINY = {**WIDTHS, "d_width": 8, "log_every": 2, "sample_every": 1000, "save_every": 1000}


@pytest.fixture()
def core_file(tmp_path: Path) -> Path:
    torch.manual_seed(3)
    path = tmp_path / "core.safetensors"
    save_checkpoint(path, AEINet(crop_size=128, **WIDTHS).half().eval(), architecture="aei_net", hyperparameters={"crop_size": 128, "id_dim": 128, **WIDTHS})
    return path


def _inputs(size: int, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(4)
    return torch.rand(batch, 3, size, size) * 2 - 1, F.normalize(torch.randn(batch, 128), dim=1)


def _faces(n: int, size: int) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(0)
    return np.stack([cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), (0, 0), 6) for _ in range(n)])


def test_a_new_detail_stage_outputs_the_core_upsampled():
    torch.manual_seed(0)
    core = AEINet(crop_size=128, **WIDTHS).eval()
    model = AEINet(crop_size=256, detail_width=8, **WIDTHS).eval()
    model.load_state_dict(core_state(model, core.state_dict()))
    target, identity = _inputs(256)
    with torch.no_grad():
        core_out = core(F.avg_pool2d(target, 2), identity).double()
        upsampled = torch.tanh(F.interpolate(torch.atanh(core_out.clamp(-0.999999, 0.999999)), scale_factor=2.0, mode="bilinear", align_corners=False))
        out = model(target, identity)
    assert out.shape == (2, 3, 256, 256)
    assert torch.allclose(out.double(), upsampled, atol=1e-4)


def test_the_detail_stage_adds_the_targets_full_resolution_once_trained():
    torch.manual_seed(0)
    model = AEINet(crop_size=256, detail_width=8, **WIDTHS).eval()
    assert model.detail is not None
    torch.nn.init.normal_(model.detail.out.weight, std=0.1)  # as if trained: the stage now adds something
    target, identity = _inputs(256)
    fine = target + 0.5 * torch.randn_like(target)  # the same 2×2 means, other full-resolution detail
    fine = fine - F.interpolate(F.avg_pool2d(fine - target, 2), scale_factor=2.0, mode="nearest")
    assert torch.allclose(F.avg_pool2d(fine, 2), F.avg_pool2d(target, 2), atol=1e-5)
    with torch.no_grad():
        assert not torch.allclose(model(target, identity), model(fine, identity), atol=1e-3)
    assert len(model.attributes(target)) == len(model.blocks) + 1


def test_a_detail_stage_needs_256_px_and_a_core_of_the_same_widths():
    with pytest.raises(ValueError, match="128-px core to 256 px"):
        AEINet(crop_size=128, detail_width=8)
    model = AEINet(crop_size=256, detail_width=8, **WIDTHS)
    with pytest.raises(ValueError, match="do not fit"):
        core_state(model, AEINet(crop_size=128, attr_width=8, gen_width=8, max_mult=2).state_dict())
    with pytest.raises(ConfigError, match="--crop-size 256"):
        AEIOptions(detail_width=8)


def test_a_detail_checkpoint_round_trips_and_keeps_its_size(tmp_path):
    model = AEINet(crop_size=256, detail_width=8, **WIDTHS).eval()
    path = tmp_path / "g.safetensors"
    save_checkpoint(path, model.half(), architecture="aei_net", hyperparameters=AEIOptions(crop_size=256, detail_width=8, **WIDTHS).generator_hyperparameters(128))
    loaded, info = load_checkpoint(path, expect="aei_net")
    assert isinstance(loaded, AEINet) and loaded.detail is not None and info.crop_size == 256
    target, identity = _inputs(256, batch=1)
    with torch.no_grad():
        assert torch.allclose(loaded(target, identity), model.float()(target, identity), atol=1e-6)
    assert AEIOptions().generator_hyperparameters(128) == {"crop_size": 128, "id_dim": 128, **{"attr_width": 12, "gen_width": 12, "max_mult": 6}}


def test_training_starts_from_a_128_px_core_and_compares_only_core_levels(encoder_file, core_file, tmp_path):
    options = AEIOptions(crop_size=256, detail_width=8, steps=2, batch=2, **TINY)
    trainer = AEITrainer(_faces(6, 256), encoder_file, tmp_path / "run", options, "cpu", init_generator=core_file)
    core, _ = load_checkpoint(core_file, expect="aei_net")
    for name, tensor in core.state_dict().items():
        assert torch.equal(trainer.generator.state_dict()[name], tensor.float()), name
    target, identity = _inputs(256)
    swapped, target_levels, swapped_levels = SwapWithAttributes(trainer.generator)(target, identity)
    assert len(target_levels) == len(swapped_levels) == len(trainer.generator.blocks)
    assert [t.shape for t in target_levels] == [s.shape for s in swapped_levels]
    trainer.run()
    assert (tmp_path / "run" / DISCRIMINATOR_FILE).is_file()
    # a weights-only restart on a fresh machine: the generator and discriminator carry over
    again = AEITrainer(_faces(6, 256), encoder_file, tmp_path / "run2", options, "cpu",
                       init_generator=tmp_path / "run" / "aei-net.safetensors", init_discriminator=tmp_path / "run" / DISCRIMINATOR_FILE)
    for name, tensor in again.discriminator.state_dict().items():
        assert torch.equal(tensor, trainer.discriminator.state_dict()[name].half().float()), name
    for name, tensor in again.generator.state_dict().items():
        assert torch.equal(tensor, trainer.generator.state_dict()[name].half().float()), name


def test_starting_weights_of_another_shape_are_refused_in_one_line(encoder_file, core_file, tmp_path):
    other = AEIOptions(crop_size=128, steps=1, batch=2, **{**TINY, "gen_width": 8})
    with pytest.raises(ConfigError, match="other widths"):
        AEITrainer(_faces(4, 128), encoder_file, tmp_path / "a", other, "cpu", init_generator=core_file)
    trained = AEITrainer(_faces(4, 128), encoder_file, tmp_path / "b", AEIOptions(crop_size=128, steps=1, batch=2, **TINY), "cpu")
    trained.run()
    with pytest.raises(ConfigError, match="does not fit"):
        AEITrainer(_faces(4, 128), encoder_file, tmp_path / "c", AEIOptions(crop_size=128, steps=1, batch=2, **{**TINY, "d_width": 4}), "cpu",
                   init_discriminator=tmp_path / "b" / DISCRIMINATOR_FILE)


def test_datasets_of_several_crop_sizes_load_at_the_largest(tmp_path):
    from realtime.train.data import face_records, load_crops

    small = make_face_dataset(tmp_path / "small", people=1, each=2)
    large = make_face_dataset(tmp_path / "large", people=1, each=1, size=256, seed=1)
    crops = load_crops(face_records([small, large]))
    assert crops.shape == (3, 256, 256, 3) and crops.dtype == np.uint8
    assert load_crops(face_records([small])).shape == (2, 112, 112, 3)  # one size: untouched


def test_train_aei_command_starts_a_detail_model_from_a_core(encoder_file, core_file, tmp_path):
    from realtime.cli import main

    faces = make_face_dataset(tmp_path / "faces", size=256)
    out = tmp_path / "run"
    code = main(["train-aei", "--faces", str(faces), "--identity-encoder", str(encoder_file), "--output", str(out), "--steps", "1", "--batch", "2", "--device", "cpu",
                 "--crop-size", "256", "--detail-width", "8", "--attr-width", "4", "--gen-width", "4", "--max-mult", "2", "--init-generator", str(core_file)])
    assert code == 0
    _, info = load_checkpoint(out / "aei-net.safetensors", expect="aei_net")
    assert info.crop_size == 256 and info.hyperparameters["detail_width"] == 8


def test_a_merge_can_shrink_the_crops_and_moves_their_landmarks(tmp_path):
    import json

    from realtime.train.data import face_records, load_crops, merge_datasets, read_manifest

    big = make_face_dataset(tmp_path / "big", people=1, each=2, size=256)
    manifest = read_manifest(big)
    for face in manifest["faces"]:  # as prepare-faces writes them: the five points in crop pixels
        face["landmarks5"] = [[90.0, 114.0], [166.0, 114.0], [128.0, 172.0], [97.0, 211.0], [159.0, 210.0]]
    (big / "manifest.json").write_text(json.dumps(manifest))
    assert merge_datasets([big], tmp_path / "small", jpeg_quality=80, crop_size=128) == 2
    assert load_crops(face_records([tmp_path / "small"])).shape == (2, 128, 128, 3)
    before, after = read_manifest(big)["faces"], read_manifest(tmp_path / "small")["faces"]
    assert np.allclose(np.asarray(after[0]["landmarks5"]), np.asarray(before[0]["landmarks5"]) / 2, atol=0.01)
    with pytest.raises(ConfigError, match="invent detail"):
        merge_datasets([tmp_path / "small"], tmp_path / "up", crop_size=256)
    assert not (tmp_path / "up").exists()  # refused before anything was written


def test_discriminator_weights_round_trip_in_fp16(tmp_path):
    from realtime.train.discriminator import MultiScaleDiscriminator, load_weights, save_weights

    torch.manual_seed(5)
    critic = MultiScaleDiscriminator(scales=2, width=8)
    save_weights(critic, tmp_path / "d.safetensors")
    back = load_weights(tmp_path / "d.safetensors")
    assert back.keys() == critic.state_dict().keys()
    for name, tensor in critic.state_dict().items():
        assert back[name].dtype == torch.float32 and torch.equal(back[name], tensor.half().float()), name


def test_a_state_saved_before_an_option_existed_resumes_as_its_default(encoder_file, tmp_path):
    AEITrainer(_faces(4, 128), encoder_file, tmp_path, AEIOptions(steps=1, batch=2, **TINY), "cpu").run()
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    del state["options"]["detail_width"]  # as a run of the version before --detail-width wrote it
    torch.save(state, tmp_path / "state.pt")
    again = AEITrainer(_faces(4, 128), encoder_file, tmp_path, AEIOptions(steps=2, batch=2, **TINY), "cpu")
    assert again.resume() and again.step == 1
    wider = AEITrainer(_faces(4, 256), encoder_file, tmp_path, AEIOptions(crop_size=256, detail_width=8, steps=2, batch=2, **TINY), "cpu")
    with pytest.raises(ValueError, match="new --output folder"):
        wider.resume()
