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
    with pytest.raises(ModelError, match="does not exist: check the path, or train/build one first$"):
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


def test_a_checkpoint_keeps_the_crop_template_and_training_it_was_saved_with(tmp_path: Path):
    """A generator trained on FFHQ-aligned crops must be fed FFHQ-aligned crops: the template is
    read back from the file (a lost template would align every face the default way), and so is
    the training record ``doctor`` shows."""
    from realtime.generators import GeneratorRequest, generator_geometry

    path = tmp_path / "ffhq.safetensors"
    save_checkpoint(path, _aei(), architecture="aei_net", hyperparameters=SMALL_AEI, training={"steps": 1200}, template="ffhq")
    assert generator_geometry(GeneratorRequest(path)) == (128, "ffhq")
    assert read_checkpoint_info(path).training == {"steps": 1200}


def _resaved(source: Path, target: Path, change, **metadata_changes) -> Path:
    """``source``'s tensors after ``change(tensors)``, with the checksum re-made to match (so the
    check under test is the one that must catch it) and the metadata updated."""
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from realtime.models.checkpoint import tensors_sha256

    tensors = load_file(str(source))
    change(tensors)
    with safe_open(str(source), framework="pt") as handle:
        meta = json.loads(handle.metadata()["realtime"])
    meta.update(metadata_changes, tensors_sha256=tensors_sha256(tensors))
    save_file(tensors, str(target), metadata={"realtime": json.dumps(meta)})
    return target


def _tampered(path: Path) -> Path:
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


FIRST = "encoder.down.0.0.weight"  # a convolution of the attribute encoder


@pytest.mark.parametrize(("make", "says", "fix"), [
    (_tampered, "failed its checksum", "the weights were changed or damaged: re-download or re-train it"),
    (lambda p: _resaved(p, p, lambda t: t.pop(FIRST)), f"does not match the aei_net architecture (1 missing, 0 unexpected tensors, e.g. {FIRST})", "it was written by another version: re-export or re-train it"),
    (lambda p: _resaved(p, p, lambda t: t.update(extra=torch.zeros(1))), "does not match the aei_net architecture (0 missing, 1 unexpected tensors, e.g. extra)", "it was written by another version: re-export or re-train it"),
    (lambda p: _resaved(p, p, lambda t: t.update({FIRST: t[FIRST][:1]})), f": tensor {FIRST} has shape", "the hyperparameters and weights disagree: re-export it"),
    (lambda p: _resaved(p, p, lambda t: None, hyperparameters={**SMALL_AEI, "detail_width": 8}), "has hyperparameters this version cannot build (a detail stage", "re-export it with this version of realtime"),
], ids=["changed weights", "a tensor missing", "a tensor too many", "a tensor of another shape", "numbers that make no model"])
def test_a_damaged_checkpoint_is_refused_naming_the_file_what_is_wrong_and_the_fix(tmp_path: Path, make, says, fix):
    """What the user reads when a generator will not load: one line that starts with the file,
    says what is wrong with it (the first tensor that differs, by name) and what to do."""
    path = make(_saved(tmp_path))
    with pytest.raises(ModelError) as caught:
        load_checkpoint(path)
    assert str(caught.value).startswith(f"checkpoint {path}") and says in caught.value.problem
    assert caught.value.fix == fix


def test_a_checkpoint_of_the_wrong_kind_says_which_kind_to_pass(tmp_path: Path):
    with pytest.raises(ModelError, match=r"holds a aei_net, not a identity_encoder: pass a identity_encoder checkpoint$"):
        load_checkpoint(_saved(tmp_path), expect="identity_encoder")


@pytest.mark.parametrize("damage", ["weight stored as float", "scale of another size", "int8 list lost"])
def test_an_int8_checkpoint_whose_weights_and_scales_disagree_is_refused_not_loaded(tmp_path: Path, damage):
    """An int8 file re-written by some tool (its checksum re-made): a weight no longer int8, a
    scale per channel that no longer fits, or metadata that forgot which weights are int8. Each
    is refused by name; none loads as a model of garbage weights or crashes in torch."""
    source = tmp_path / "q.safetensors"
    info = save_checkpoint(source, _aei(), architecture="aei_net", hyperparameters=SMALL_AEI, weight_storage="int8")
    name = info.int8_weights[0]
    from realtime.models.checkpoint import SCALE_SUFFIX

    if damage == "weight stored as float":
        path = _resaved(source, tmp_path / "bad.safetensors", lambda t: t.update({name: t[name].float()}))
    elif damage == "scale of another size":
        path = _resaved(source, tmp_path / "bad.safetensors", lambda t: t.update({name + SCALE_SUFFIX: t[name + SCALE_SUFFIX][1:]}))
    else:
        path = _resaved(source, tmp_path / "bad.safetensors", lambda t: None, int8_weights=[], format_version=1)
    with pytest.raises(ModelError, match=rf"checkpoint {path}"):
        load_checkpoint(path)


def _with_raw_metadata(source: Path, target: Path, metadata: dict[str, str]) -> Path:
    from safetensors.torch import load_file, save_file

    save_file(load_file(str(source)), str(target), metadata=metadata)
    return target


@pytest.mark.parametrize(("make", "fix"), [
    (lambda p: (p.write_bytes(b"\x80\x04\x95" + b"\x00" * 100), p)[1], "it is corrupt or of another format: re-download or re-train it"),
    (lambda p: _with_raw_metadata(p, p, {"other": "tool"}), "only checkpoints written by realtime can be loaded"),
    (lambda p: _with_raw_metadata(p, p, {"realtime": "[1, 2]"}), "re-export it with this version of realtime"),
    (lambda p: _resaved(p, p, lambda t: None, format_version=0), "it was damaged or not written by realtime: re-download or re-train it"),
    (lambda p: _resaved(p, p, lambda t: None, architecture="unet"), "expected one of ARCHITECTURES"),
    (lambda p: _resaved(p, p, lambda t: None, hyperparameters={**SMALL_AEI, "gen_width": 0}), "it was damaged or not written by realtime: re-download or re-train it"),
], ids=["not safetensors", "another tool's file", "metadata not a table", "bad field", "unknown architecture", "hyperparameter out of range"])
def test_every_refusal_of_a_checkpoint_ends_with_what_to_do(tmp_path: Path, make, fix):
    """The line a user gets for a file realtime will not load tells them what to do next."""
    from realtime.models.checkpoint import ARCHITECTURES

    fix = fix.replace("ARCHITECTURES", ", ".join(ARCHITECTURES))  # other modules may register more
    path = make(_saved(tmp_path))
    with pytest.raises(ModelError) as caught:
        load_checkpoint(path)
    assert str(caught.value).startswith(f"checkpoint {path} ") and str(caught.value).endswith(f": {fix}")


def test_a_malformed_int8_tensor_says_to_re_export(tmp_path: Path):
    from realtime.models.checkpoint import SCALE_SUFFIX

    source = tmp_path / "q.safetensors"
    name = save_checkpoint(source, _aei(), architecture="aei_net", hyperparameters=SMALL_AEI, weight_storage="int8").int8_weights[0]
    path = _resaved(source, tmp_path / "bad.safetensors", lambda t: t.update({name + SCALE_SUFFIX: t[name + SCALE_SUFFIX][1:]}))
    with pytest.raises(ModelError, match=rf": int8 tensor {name} or its scale is missing or malformed: re-export it with this version of realtime$"):
        load_checkpoint(path)
