"""Does FaceMesh (the ONNX network, run by torch) agree with MediaPipe's FaceLandmarker on real
clips? Each frame's crop comes from the previous frame's FaceLandmarker landmarks (MediaPipe's own
tracking rule); the error is the mean distance over the 468 shared points in inter-ocular
distances (NME). Also times the network (CPU here; CUDA FP16 compiled when a GPU is present).

    python bench/facemesh_check.py ../shared/models/facemesh_468_192.onnx ../shared/data/videos/*.mp4 [--frames 120] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from realtime.config import CaptureConfig, DetectConfig
from realtime.io.sources import open_source
from realtime.models.facemesh import MESH_SIZE, load_facemesh, mesh_crop_from_frame
from realtime.models.landmarker import FaceLandmarkerModel
from realtime.models.weights import resolve_face_landmarker
from realtime.photo import landmarker_options
from realtime.vision.align import apply_affine, invert_affine, warp_crop
from realtime.vision.landmarks import inter_ocular_distance


def check_clip(net: torch.nn.Module, clip: Path, frames: int) -> dict[str, float]:
    source = open_source(CaptureConfig(input=str(clip)))
    landmarker = FaceLandmarkerModel(resolve_face_landmarker(None), landmarker_options(DetectConfig()))
    previous, errors, bias = None, [], []
    try:
        for index, (frame, t_s) in enumerate(source.frames()):
            if index >= frames:
                break
            found = landmarker.detect(frame, t_s)
            if not found:
                previous = None
                continue
            reference = found[0].landmarks[:468]
            if previous is not None:
                crop_from_frame = mesh_crop_from_frame(previous)
                crop = torch.from_numpy(warp_crop(frame, crop_from_frame, MESH_SIZE)).float()[None] / 255.0
                with torch.no_grad():
                    mesh = net(crop).reshape(468, 3)[:, :2].numpy()
                points = apply_affine(invert_affine(crop_from_frame), mesh)
                iod = inter_ocular_distance(found[0].landmarks)
                errors.append(float(np.linalg.norm(points - reference, axis=1).mean() / iod))
                bias.append((points - reference) / iod)
            previous = found[0].landmarks
    finally:
        source.close()
        landmarker.close()
    systematic = float(np.linalg.norm(np.mean(bias, axis=0), axis=1).mean()) if bias else float("nan")
    return {"frames": len(errors), "nme_mean": round(float(np.mean(errors)), 4), "nme_p95": round(float(np.percentile(errors, 95)), 4), "systematic_part": round(systematic, 4)}


def time_network(net: torch.nn.Module, device: str, iters: int = 200) -> float:
    model = net.to(device)
    x = torch.rand(1, MESH_SIZE, MESH_SIZE, 3, device=device)
    if device == "cuda":
        model = torch.compile(model.half(), mode="reduce-overhead", fullgraph=True)
        x = x.half()
    with torch.no_grad():
        for _ in range(10):
            model(x)
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(iters):
            model(x)
        if device == "cuda":
            torch.cuda.synchronize()
    return (time.perf_counter() - t0) / iters * 1e3


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
