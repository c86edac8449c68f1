"""Study (closed; BENCHMARKS-HISTORY.md §15, §16): what int8 weight storage costs a generator: the shipped FP16 file re-stored with per-channel int8
weights (``save_checkpoint(weight_storage="int8")``), both loaded as the pipeline loads them, run on
real aligned faces (a prepared dataset: each face swapped onto another person's), and compared:
file sizes, the per-pixel difference in grey levels (max, 99.9th percentile, mean), PSNR, and a
PNG grid (target | FP16 swap | int8 swap | difference × 10) to look at.
    python3 bench/studies/int8_storage.py OUTDIR --faces DATASET --generator FP16_CHECKPOINT [--pairs 16]"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from realtime.inference.spec import to_generator  # noqa: E402
from realtime.models.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from realtime.train.aei import write_grid  # noqa: E402
from realtime.train.data import face_records, load_crops  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--faces", type=Path, required=True)
    parser.add_argument("--generator", type=Path, required=True, help="an FP16 checkpoint (the shipped aei-net-v2 is already int8)")
    parser.add_argument("--encoder", type=Path, default=ROOT / "models" / "identity-encoder-v1.safetensors")
    parser.add_argument("--pairs", type=int, default=16)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    generator, info = load_checkpoint(args.generator, expect="aei_net")
    int8_path = args.out / f"{args.generator.stem}-int8.safetensors"
    save_checkpoint(int8_path, generator, architecture=info.architecture, hyperparameters=info.hyperparameters, training=info.training, template=info.template, weight_storage="int8")
    quantized, int8_info = load_checkpoint(int8_path, expect="aei_net")
    encoder, _ = load_checkpoint(args.encoder, expect="identity_encoder")
    records = face_records([args.faces])
    picks = np.random.default_rng(0).choice(len(records), size=min(2 * args.pairs, len(records)), replace=False)
    crops = to_generator(load_crops([records[i] for i in picks]))
    size = info.crop_size or 128
    faces = F.interpolate(crops, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    sources, targets = faces[: len(faces) // 2], faces[len(faces) // 2 :]
    with torch.no_grad():
        identity = encoder(F.interpolate(sources, size=(112, 112), mode="bilinear", antialias=True, align_corners=False))
        reference, ours = generator(targets, identity), quantized(targets, identity)
    grey = (ours - reference).abs() * 127.5
    mse = float(((ours - reference) / 2).pow(2).mean())
    result = {
        "generator": str(args.generator), "faces": str(args.faces), "pairs": len(targets), "int8_tensors": len(int8_info.int8_weights),
        "fp16_bytes": args.generator.stat().st_size, "int8_bytes": int8_path.stat().st_size,
        "diff_grey_max": round(float(grey.max()), 3), "diff_grey_p999": round(float(grey.flatten().quantile(0.999)), 3),
        "diff_grey_mean": round(float(grey.mean()), 4), "psnr_db": round(10 * float(np.log10(1 / max(mse, 1e-12))), 2),
    }
    write_grid([targets, reference, ours, (ours - reference).abs() * 10 - 1], args.out / "int8-storage-grid.png", labels=("target", "FP16 weights", "int8 weights", "|difference| x 10"))
    (args.out / "int8-storage.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
