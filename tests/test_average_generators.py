"""realtime.train.average (bench/average_generators.py): the mean of one run's chunk weights, and a refusal to mix architectures."""

from pathlib import Path

import pytest
import torch

from realtime.errors import ModelError
from realtime.models.aei_net import AEINet
from realtime.models.checkpoint import load_checkpoint, save_checkpoint
from realtime.train.average import average_generators

WIDTHS = {"attr_width": 4, "gen_width": 4, "max_mult": 2}


def _save(path: Path, seed: int, **widths: int) -> Path:
    torch.manual_seed(seed)
    hyperparameters = {"crop_size": 128, "id_dim": 128, **widths}
    save_checkpoint(path, AEINet(crop_size=128, **widths).half().eval(), architecture="aei_net", hyperparameters=hyperparameters, training={"steps": seed})
    return path


def test_the_average_holds_the_mean_weights_and_says_what_it_came_from(tmp_path):
    a, b = _save(tmp_path / "a.safetensors", 1, **WIDTHS), _save(tmp_path / "b.safetensors", 2, **WIDTHS)
    assert average_generators(tmp_path / "mean.safetensors", [a, b], weight_storage="float") == 2
    mean, info = load_checkpoint(tmp_path / "mean.safetensors", expect="aei_net")
    (model_a, _), (model_b, _) = load_checkpoint(a), load_checkpoint(b)
    for name, tensor in mean.state_dict().items():
        if tensor.is_floating_point():
            expected = (model_a.state_dict()[name].float() + model_b.state_dict()[name].float()) / 2
            assert torch.allclose(tensor.float(), expected, atol=2e-3), name  # stored as FP16
    assert info.training["averaged_from"] == ["a.safetensors", "b.safetensors"]


def test_generators_of_other_architectures_are_refused(tmp_path):
    a = _save(tmp_path / "a.safetensors", 1, **WIDTHS)
    b = _save(tmp_path / "b.safetensors", 2, **{**WIDTHS, "gen_width": 8})
    with pytest.raises(ModelError, match="another architecture"):
        average_generators(tmp_path / "mean.safetensors", [a, b])
    assert not (tmp_path / "mean.safetensors").exists()
