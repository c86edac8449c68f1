"""FP16 and BF16 against FP32 for a generator on a real face (the built-in portrait, cropped as
the generator crops): the gap the precision policy judges (99.9th percentile of |Δ|, [0,1]
units), the largest difference, and whether the policy would accept each.
    python3 bench/byo_parity.py MODEL.onnx [--generator-profile NAME] [--json OUT]"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import torch

from realtime.config import DetectConfig
from realtime.generators import GeneratorRequest, load_spec
from realtime.inference.select import PRECISION_TOLERANCE, PrecisionReference, precision_gap
from realtime.inference.spec import to_generator
from realtime.io.demo import demo_source_path
from realtime.photo import find_one_face, read_image
from realtime.vision.align import crop_from_frame_matrix, warp_crop
from realtime.vision.landmarks import five_points


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", type=Path)
    parser.add_argument("--generator-profile")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    spec = load_spec(GeneratorRequest(args.model, profile=args.generator_profile))
    image = read_image(demo_source_path())
    landmarks = find_one_face(image, DetectConfig(max_faces=1), "built-in", demo_source_path())
    crop = warp_crop(image, crop_from_frame_matrix(five_points(landmarks), spec.crop_size, spec.template), spec.crop_size)
    inputs = [to_generator(crop[None])]
    if spec.id_dim is not None:
        inputs.append(torch.nn.functional.normalize(torch.randn(1, spec.id_dim, generator=torch.Generator().manual_seed(0)), dim=1))
    reference = PrecisionReference(tuple(inputs))
    expected = reference.expected(spec)
    result = {"model": args.model.name, "architecture": spec.architecture, "tolerance": PRECISION_TOLERANCE}
    for dtype in (torch.float16, torch.bfloat16):
        module = copy.deepcopy(spec.module).to("cuda", dtype).eval()
        with torch.inference_mode():
            out = module(*[t.to("cuda", dtype) for t in inputs])
        outputs = out if isinstance(out, tuple) else (out,)
        gap = precision_gap(outputs, expected)
        largest = float((outputs[0].float().cpu() - expected).abs().max() / 2)
        name = str(dtype).replace("torch.", "")
        result[name] = {"gap_p999": round(gap, 5), "max": round(largest, 5), "finite": bool(torch.isfinite(outputs[0]).all()), "accepted": gap <= PRECISION_TOLERANCE}
        print(f"{args.model.name} {name}: p99.9 |Δ| {gap:.5f}, max {largest:.5f} ([0,1] units; tolerance {PRECISION_TOLERANCE:.5f}) → {'accepted' if gap <= PRECISION_TOLERANCE else 'rejected'}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
