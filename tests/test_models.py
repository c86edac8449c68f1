"""Generators and the identity encoder: shapes, determinism, torch.export, checkpoints."""

from pathlib import Path

import pytest
import torch

from realtime.errors import ModelError
from realtime.models.aei_net import AEINet
from realtime.models.checkpoint import load_checkpoint, read_checkpoint_info, save_checkpoint
from realtime.models.identity import IdentityEncoder
from realtime.models.target_autoencoder import TargetAutoencoder, TargetSwapper

SMALL_AEI = {"crop_size": 128, "id_dim": 32, "attr_width": 4, "gen_width": 4, "max_mult": 4}


def _aei():
    torch.manual_seed(0)
    return AEINet(**SMALL_AEI).eval()


def _aei_with_detail():
    """The shipped architecture, small: a 128-px core and a detail stage that adds something."""
    torch.manual_seed(0)
    model = AEINet(**{**SMALL_AEI, "crop_size": 256, "detail_width": 8}).eval()
    assert model.detail is not None
    torch.nn.init.normal_(model.detail.out.weight, std=0.1)
    return model


def _inputs(batch=2, size=128, dim=32):
    g = torch.Generator().manual_seed(1)
    return torch.rand(batch, 3, size, size, generator=g) * 2 - 1, torch.nn.functional.normalize(torch.randn(batch, dim, generator=g), dim=1)


@pytest.mark.parametrize("crop", [128, 256])
def test_aei_net_shapes_and_range(crop):
    model = AEINet(crop_size=crop, id_dim=32, attr_width=4, gen_width=4, max_mult=4).eval()
    target, identity = _inputs(2, crop)
    with torch.no_grad():
        out = model(target, identity)
        levels = model.attributes(target)
    assert out.shape == (2, 3, crop, crop)
    assert out.abs().max() <= 1.0
    assert [lv.shape[-1] for lv in levels] == [2**i for i in range(1, crop.bit_length())]


def test_aei_net_is_deterministic_and_uses_the_identity():
    model = _aei()
    target, identity = _inputs()
    with torch.no_grad():
        a, b = model(target, identity), model(target, identity)
        other = model(target, identity.flip(0))
    assert torch.equal(a, b)
    assert not torch.allclose(a, other)  # a different identity changes the face


def test_identity_encoder_is_unit_norm_and_sized():
    for size in [(112, 112), (112, 96)]:
        model = IdentityEncoder(embed_dim=64, input_size=size, width=0.25).eval()
        with torch.no_grad():
            out = model(torch.rand(3, 3, *size) * 2 - 1)
        assert out.shape == (3, 64)
        assert torch.allclose(out.norm(dim=1), torch.ones(3), atol=1e-5)
    with pytest.raises(ValueError):
        IdentityEncoder(input_size=(100, 100))


def test_target_autoencoder_rgb_and_mask():
    model = TargetAutoencoder(crop_size=128, identities=3, width=8, bottleneck=64).eval()
    faces = torch.rand(2, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        rgb, mask = model(faces, identity=2)
        swapped = TargetSwapper(model, 2)(faces)
    assert rgb.shape == (2, 3, 128, 128) and mask.shape == (2, 1, 128, 128)
    assert 0 <= mask.min() and mask.max() <= 1 and rgb.abs().max() <= 1
    assert torch.equal(swapped[0], rgb)
    with pytest.raises(ValueError):
        TargetSwapper(model, 3)


@pytest.mark.parametrize(
    "make, inputs",
    [
        (lambda: _aei(), lambda: _inputs(1)),
        (lambda: _aei_with_detail(), lambda: _inputs(1, size=256)),
        (lambda: IdentityEncoder(embed_dim=32, width=0.25).eval(), lambda: (torch.rand(1, 3, 112, 112),)),
        (lambda: TargetSwapper(TargetAutoencoder(crop_size=128, identities=2, width=8, bottleneck=64).eval(), 1).eval(), lambda: (torch.rand(1, 3, 128, 128),)),
    ],
    ids=["aei_net", "aei_net_detail", "identity_encoder", "target_autoencoder"],
)
def test_every_model_exports(make, inputs):
    """torch-tensorrt's dynamo path starts from this same exported graph."""
    model, args = make(), inputs()
    exported = torch.export.export(model, args)
    with torch.no_grad():
        expected = model(*args)
        got = exported.module()(*args)
    expected, got = (expected if isinstance(expected, tuple) else (expected,)), (got if isinstance(got, tuple) else (got,))
    for e, g in zip(expected, got, strict=True):
        assert torch.allclose(e, g, atol=1e-5)


def test_checkpoint_round_trip(tmp_path: Path):
    model = _aei()
    path = tmp_path / "aei.safetensors"
    info = save_checkpoint(path, model, architecture="aei_net", hyperparameters=SMALL_AEI, training={"steps": 0}, template="arcface")
    assert info.crop_size == 128 and info.embed_dim == 32
    loaded, read = load_checkpoint(path, expect="aei_net")
    assert read == info == read_checkpoint_info(path)
    target, identity = _inputs()
    with torch.no_grad():
        assert torch.equal(loaded(target, identity), model(target, identity))


def test_fp16_checkpoint_halves_the_size(tmp_path: Path):
    model = _aei()
    full, half = tmp_path / "f.safetensors", tmp_path / "h.safetensors"
    save_checkpoint(full, model, architecture="aei_net", hyperparameters=SMALL_AEI)
    save_checkpoint(half, model, architecture="aei_net", hyperparameters=SMALL_AEI, dtype=torch.float16)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded, _ = load_checkpoint(half)
    target, identity = _inputs()
    with torch.no_grad():
        assert (loaded(target, identity) - model(target, identity)).abs().max() < 2e-2


def test_int8_weight_storage_quarters_the_weights_and_dequantises_at_load(tmp_path: Path):
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from realtime.models.checkpoint import SCALE_SUFFIX, dequantize_int8, quantize_int8, tensors_sha256

    weight = torch.randn(6, 4, 3, 3) * torch.arange(1, 7).float()[:, None, None, None]  # a scale per channel
    values, scale = quantize_int8(weight)
    assert values.dtype == torch.int8 and scale.shape == (6,) and values.abs().max() <= 127
    assert ((dequantize_int8(values, scale) - weight).abs() <= scale.float()[:, None, None, None] * 0.51 + 1e-3).all()
    model = _aei()
    half, small = tmp_path / "h.safetensors", tmp_path / "q.safetensors"
    save_checkpoint(half, model, architecture="aei_net", hyperparameters=SMALL_AEI, dtype=torch.float16)
    info = save_checkpoint(small, model, architecture="aei_net", hyperparameters=SMALL_AEI, dtype=torch.float16, weight_storage="int8")
    assert info.format_version == 2 and info.int8_weights and read_checkpoint_info(small) == info
    assert read_checkpoint_info(half).format_version == 1 and not read_checkpoint_info(half).int8_weights
    assert small.stat().st_size < 0.65 * half.stat().st_size
    loaded, _ = load_checkpoint(small)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    target, identity = _inputs()
    with torch.no_grad():
        reference, got = model(target, identity), loaded(target, identity)
    assert (got - reference).abs().max() < 0.05 and (got - reference).abs().mean() < 5e-3
    tensors = load_file(str(small))  # a scale missing (the checksum re-made to match): named, not a crash
    with safe_open(str(small), framework="pt") as handle:
        metadata = handle.metadata()
    name = info.int8_weights[0]
    del tensors[name + SCALE_SUFFIX]
    meta = json.loads(metadata["realtime"])
    meta["tensors_sha256"] = tensors_sha256(tensors)
    save_file(tensors, str(tmp_path / "broken.safetensors"), metadata={"realtime": json.dumps(meta)})
    with pytest.raises(ModelError, match=f"int8 tensor {name}"):
        load_checkpoint(tmp_path / "broken.safetensors")
    with pytest.raises(ValueError, match="weight_storage"):
        save_checkpoint(tmp_path / "x.safetensors", model, architecture="aei_net", hyperparameters=SMALL_AEI, weight_storage="int4")


def _saved(tmp_path: Path) -> Path:
    path = tmp_path / "aei.safetensors"
    save_checkpoint(path, _aei(), architecture="aei_net", hyperparameters=SMALL_AEI)
    return path


def test_missing_and_foreign_files(tmp_path: Path):
    with pytest.raises(ModelError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.safetensors")
    pickle_like = tmp_path / "model.pt"
    pickle_like.write_bytes(b"\x80\x04\x95" + b"\x00" * 100)
    with pytest.raises(ModelError, match="not a safetensors file"):
        load_checkpoint(pickle_like)


def test_truncated_file(tmp_path: Path):
    path = _saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1000])
    with pytest.raises(ModelError, match="truncated or damaged|not a safetensors"):
        load_checkpoint(path)


def test_tampered_weights_fail_the_checksum(tmp_path: Path):
    path = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF  # flip bits in the last tensor's bytes
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="failed its checksum"):
        load_checkpoint(path)


def test_wrong_architecture_and_mismatched_weights(tmp_path: Path):
    path = _saved(tmp_path)
    with pytest.raises(ModelError, match="holds a aei_net, not a identity_encoder"):
        load_checkpoint(path, expect="identity_encoder")
    # weights of one size, metadata of another
    from safetensors.torch import save_file

    from realtime.models.checkpoint import CheckpointInfo, tensors_sha256

    tensors = {k: v.contiguous() for k, v in _aei().state_dict().items()}
    info = CheckpointInfo("aei_net", {**SMALL_AEI, "gen_width": 8}, 128, None, 32, {}, tensors_sha256(tensors))
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata={"realtime": info.to_json()})
    with pytest.raises(ModelError, match="shape|does not match"):
        load_checkpoint(bad)


def test_file_without_our_metadata(tmp_path: Path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(ModelError, match="no realtime metadata"):
        load_checkpoint(path)
