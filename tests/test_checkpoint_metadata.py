"""Checkpoint metadata a user's file may carry (issue 38 item 4): the format version, the
embedding and crop sizes, at and just past their bounds, and fields of the wrong kind. Each refusal is one line naming the file and the
field; each value at a bound is accepted. Only the header is read (``read_checkpoint_info``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("safetensors")

from realtime.errors import ModelError  # noqa: E402
from realtime.models.aei_net import AEINet  # noqa: E402
from realtime.models.checkpoint import FORMAT_VERSION, read_checkpoint_info, save_checkpoint  # noqa: E402
from realtime.models.identity import IdentityEncoder  # noqa: E402

ENCODER = {"embed_dim": 16, "width": 0.25}


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("checkpoint") / "encoder.safetensors"
    save_checkpoint(path, IdentityEncoder(**ENCODER).eval(), architecture="identity_encoder", hyperparameters=ENCODER)
    return path


def _with(path: Path, dest: Path, hyperparameters: dict[str, Any] | None = None, **fields: Any) -> Path:
    """``path`` with its metadata fields (and hyperparameters) changed; tensors and checksum kept."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(path), framework="pt") as handle:
        meta = json.loads(handle.metadata()["realtime"])
    meta.update(fields)
    meta["hyperparameters"] = {**meta["hyperparameters"], **(hyperparameters or {})}
    save_file(load_file(str(path)), str(dest), metadata={"realtime": json.dumps(meta)})
    return dest


def _refusal(path: Path) -> str:
    with pytest.raises(ModelError) as caught:
        read_checkpoint_info(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"checkpoint {path} ")
    return message


@pytest.mark.parametrize("version", [1, FORMAT_VERSION])
def test_every_format_version_this_realtime_writes_is_read(tmp_path, encoder, version):
    assert read_checkpoint_info(_with(encoder, tmp_path / "ok.safetensors", format_version=version)).format_version == version


def test_a_newer_format_version_asks_for_an_upgrade(tmp_path, encoder):
    message = _refusal(_with(encoder, tmp_path / "new.safetensors", format_version=FORMAT_VERSION + 1))
    assert f"is format {FORMAT_VERSION + 1}, newer than this realtime understands: upgrade realtime" in message


@pytest.mark.parametrize("version", [0, -1, True, 1.5, "2", None])
def test_a_format_version_that_is_not_a_version_number_is_bad_metadata(tmp_path, encoder, version):
    message = _refusal(_with(encoder, tmp_path / "bad.safetensors", format_version=version))
    assert f"has bad metadata (format_version {version!r} is not a version number)" in message


@pytest.mark.parametrize("size", [1, 2048])
def test_embedding_sizes_at_the_bounds_are_read(tmp_path, encoder, size):
    info = read_checkpoint_info(_with(encoder, tmp_path / "ok.safetensors", {"embed_dim": size}, embed_dim=size))
    assert info.embed_dim == size and info.hyperparameters["embed_dim"] == size


@pytest.mark.parametrize(("size", "says"), [(0, "is not a size"), (-128, "is not a size"), (True, "is not a size"), (128.0, "is not a size"), ("128", "is not a size")])
def test_an_embedding_size_that_is_not_a_size_is_bad_metadata(tmp_path, encoder, size, says):
    message = _refusal(_with(encoder, tmp_path / "bad.safetensors", embed_dim=size))
    assert f"has bad metadata (embed_dim {size!r} {says})" in message


@pytest.mark.parametrize("size", [0, 2049, 10**9])
def test_an_encoder_embedding_size_out_of_range_is_refused_before_anything_is_built(tmp_path, encoder, size):
    message = _refusal(_with(encoder, tmp_path / "bad.safetensors", {"embed_dim": size}, embed_dim=max(size, 1)))
    assert f"hyperparameters.embed_dim {size} is not a whole number from 1 to 2048" in message


def test_an_embedding_size_that_disagrees_with_the_hyperparameters_is_bad_metadata(tmp_path, encoder):
    message = _refusal(_with(encoder, tmp_path / "bad.safetensors", embed_dim=512))
    assert "embed_dim 512 but the hyperparameters say 16" in message


GENERATOR = {"crop_size": 128, "id_dim": 32, "attr_width": 4, "gen_width": 4, "max_mult": 4}


@pytest.fixture(scope="module")
def generator(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("checkpoint") / "aei.safetensors"
    save_checkpoint(path, AEINet(**GENERATOR).eval(), architecture="aei_net", hyperparameters=GENERATOR)
    return path


@pytest.mark.parametrize("size", [64, 512, 128.0, True, "128"])
def test_a_crop_size_faces_cannot_be_aligned_at_is_bad_metadata(tmp_path, generator, size):
    """The crop size decides how every face is cut out: 128.0 or "128" is not read as 128."""
    message = _refusal(_with(generator, tmp_path / "bad.safetensors", crop_size=size))
    assert f"has bad metadata (crop_size {size!r} is not one of 128, 256)" in message


def test_a_generator_whose_sizes_disagree_with_its_hyperparameters_is_bad_metadata(tmp_path, generator):
    """The summary fields (what ``doctor`` and the crop geometry read) must say what the network
    is: a 256-px summary over a 128-px network, or a 64-D identity over a 32-D one, is refused."""
    assert "(crop_size 256 but hyperparameters.crop_size 128)" in _refusal(_with(generator, tmp_path / "crop.safetensors", crop_size=256))
    assert "(embed_dim 64 but the hyperparameters say 32)" in _refusal(_with(generator, tmp_path / "id.safetensors", embed_dim=64))


@pytest.mark.parametrize(("field", "value", "says"), [
    ("template", 5, "template 5 is not text"),
    ("tensors_sha256", ["ab"], "tensors_sha256 ['ab'] is not text"),
    ("training", [], "hyperparameters and training must be tables"),
    ("int8_weights", [1], "int8_weights must be a list of tensor names"),
    ("int8_weights", "w", "int8_weights must be a list of tensor names"),
])
def test_a_field_of_the_wrong_kind_is_bad_metadata_naming_it(tmp_path, generator, field, value, says):
    message = _refusal(_with(generator, tmp_path / "bad.safetensors", **{field: value}))
    assert f"has bad metadata ({says})" in message
