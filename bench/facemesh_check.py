"""Does FaceMesh (the ONNX network, run by torch) agree with MediaPipe's FaceLandmarker on real
clips? The NME per clip (``realtime.eval.facemesh.check_clip``), and the network's time (CPU here;
CUDA FP16 compiled when a GPU is present).

    python bench/facemesh_check.py ../shared/models/facemesh_468_192.onnx ../shared/data/videos/*.mp4 [--frames 120] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from realtime.eval.facemesh import check_clip, time_network
from realtime.models.facemesh import load_facemesh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("onnx", type=Path)
    parser.add_argument("clips", type=Path, nargs="+")
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    net = load_facemesh(args.onnx)
    result = {"clips": {clip.name: check_clip(net, clip, args.frames) for clip in args.clips}}
    result["ms_per_face_cpu"] = round(time_network(net, "cpu", 50), 2)
    if torch.cuda.is_available():
        result["ms_per_face_cuda_fp16_compiled"] = round(time_network(load_facemesh(args.onnx), "cuda"), 3)
    for name, row in result["clips"].items():
        print(f"{name:<32} {row['frames']:>4} frames  NME mean {row['nme_mean']:.4f}  p95 {row['nme_p95']:.4f}  systematic {row['systematic_part']:.4f}")
    print({k: v for k, v in result.items() if k != "clips"})
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
