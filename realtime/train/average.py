"""Average the weights of generators of one architecture and lineage (consecutive training chunks of
one run), a coarse weight EMA: GAN generators' weights wander around a good point from step to step,
and their mean is often better than any one of them. The first file's metadata is kept, its training
record gains ``averaged_from``. Run it with ``python3 bench/average_generators.py``."""

from __future__ import annotations

from pathlib import Path

import torch

from realtime.errors import ModelError
from realtime.models.checkpoint import load_checkpoint, save_checkpoint


def average_generators(out: Path, generators: list[Path], weight_storage: str = "int8") -> int:
    """Write the mean of ``generators``' weights to ``out`` (FP16, ``weight_storage`` as
    ``save_checkpoint`` takes it); returns how many were averaged. Refuses, writing nothing,
    generators whose hyperparameters differ from the first's."""
    models = [load_checkpoint(path, expect="aei_net") for path in generators]
    first, info = models[0]
    for path, (_, other) in zip(generators[1:], models[1:], strict=True):
        if other.hyperparameters != info.hyperparameters:
            raise ModelError(f"{path} is another architecture than {generators[0]}", "only one run's chunks can be averaged")
    states = [model.state_dict() for model, _ in models]
    mean = {name: (torch.stack([s[name].float() for s in states]).mean(0) if tensor.is_floating_point() else tensor) for name, tensor in states[0].items()}
    first.load_state_dict(mean)
    training = {**info.training, "averaged_from": [p.name for p in generators]}
    save_checkpoint(out, first.half().eval(), architecture=info.architecture, hyperparameters=info.hyperparameters, training=training, template=info.template, weight_storage=weight_storage)
    return len(states)
