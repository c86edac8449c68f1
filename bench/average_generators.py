"""Average the weights of generators of one architecture and lineage (consecutive training chunks of
one run), a coarse weight EMA: GAN generators' weights wander around a good point from step to step,
and their mean is often better than any one of them. The first file's metadata is kept, its training
record gains ``averaged_from``.
    python3 bench/average_generators.py OUT.safetensors A.safetensors B.safetensors ... [--weight-storage int8]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from realtime.models.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("generators", type=Path, nargs="+")
    parser.add_argument("--weight-storage", choices=("float", "int8"), default="int8")
    args = parser.parse_args()
    models = [load_checkpoint(path, expect="aei_net") for path in args.generators]
    first, info = models[0]
    for path, (_, other) in zip(args.generators[1:], models[1:], strict=True):
        if other.hyperparameters != info.hyperparameters:
            sys.exit(f"{path} is another architecture than {args.generators[0]}: only one run's chunks can be averaged")
    states = [model.state_dict() for model, _ in models]
    mean = {name: (torch.stack([s[name].float() for s in states]).mean(0) if tensor.is_floating_point() else tensor) for name, tensor in states[0].items()}
    first.load_state_dict(mean)
    training = {**info.training, "averaged_from": [p.name for p in args.generators]}
    save_checkpoint(args.out, first.half().eval(), architecture=info.architecture, hyperparameters=info.hyperparameters, training=training, template=info.template, weight_storage=args.weight_storage)
    print(f"wrote {args.out}: the mean of {len(states)} generators")


if __name__ == "__main__":
    main()
