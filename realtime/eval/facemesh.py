"""Does FaceMesh (the ONNX network, run by torch) agree with MediaPipe's FaceLandmarker on real
clips? Each frame's crop comes from the previous frame's FaceLandmarker landmarks (MediaPipe's own
tracking rule); the error is the mean distance over the 468 shared points in inter-ocular
distances (NME). ``bench/facemesh_check.py`` runs it on clips (BENCHMARKS-HISTORY §9c)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from realtime.config import CaptureConfig, DetectConfig
from realtime.io.sources import open_source
from realtime.models.facemesh import MESH_SIZE, mesh_crop_from_frame
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
    net = net.to(device)
    model: Callable[[torch.Tensor], torch.Tensor] = net
    x = torch.rand(1, MESH_SIZE, MESH_SIZE, 3, device=device)
    if device == "cuda":
        model = torch.compile(net.half(), mode="reduce-overhead", fullgraph=True)
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
