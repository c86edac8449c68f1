"""Benchmarks that print figures (never asserted in tests).

``bench_engine`` isolates the pipeline engine: pass-through stages on 1080p frames, so what it
measures is the cost of threads, queues and timing alone. Throughput comes from unpaced runs
(blocking queues, as fast as possible); the latency each queue hop adds comes from paced runs,
where queues are empty and latency is pure hand-over cost.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from realtime.io.sinks import NullSink
from realtime.pipeline.pipeline import Pipeline
from realtime.pipeline.queues import Policy
from realtime.report import device_info
from realtime.stages.capture import CaptureStage
from realtime.testing import PassThroughStage, SyntheticSource

if TYPE_CHECKING:
    from realtime.inference.spec import GeneratorSpec, Runner


def _engine_run(frames: int, width: int, height: int, hops: int, *, paced_fps: float | None, policy: Policy) -> dict[str, Any]:
    source = SyntheticSource(frames, width, height, fps=paced_fps or 60.0, distinct=False)
    stages = [PassThroughStage(f"hop{i}") for i in range(hops)]
    pipeline = Pipeline(CaptureStage(source, paced=paced_fps is not None), stages, [NullSink()], policy=policy, queue_size=2)
    t0 = time.perf_counter()
    pipeline.run()
    wall_s = time.perf_counter() - t0
    report = pipeline.stats.report()
    return {
        "hops": hops,
        "paced_fps": paced_fps,
        "frames": report["frames"]["done"],
        "dropped": sum(report["frames"]["dropped"].values()),
        "throughput_fps": report["throughput_fps"],
        "wall_s": round(wall_s, 3),
        "latency_ms": report["latency_ms"],
    }


def bench_engine(*, frames: int = 2000, width: int = 1920, height: int = 1080, hops: Sequence[int] = (0, 1, 4, 8), paced_fps: float = 60.0, paced_frames: int = 300) -> dict[str, Any]:
    unpaced = [_engine_run(frames, width, height, n, paced_fps=None, policy="block") for n in hops]
    paced = [_engine_run(paced_frames, width, height, n, paced_fps=paced_fps, policy="latest_wins") for n in hops]
    base, most = paced[0], paced[-1]
    span = most["hops"] - base["hops"]
    per_hop = {
        q: round((most["latency_ms"][q] - base["latency_ms"][q]) / span, 4) if span else None
        for q in ("p50", "p95", "p99")
    }
    return {
        "benchmark": "engine",
        "frame_size": f"{width}x{height}",
        "device": device_info(),
        "unpaced": unpaced,
        "paced": paced,
        "added_latency_per_hop_ms": per_hop,
    }


def format_engine_table(result: dict[str, Any]) -> str:
    lines = [f"engine benchmark, {result['frame_size']} frames, pass-through stages ({result['device']['cpu_count']} CPUs)"]
    lines.append(f"{'hops':>4} {'unpaced fps':>12} {'paced p50 ms':>13} {'p95 ms':>8} {'p99 ms':>8} {'drops':>6}")
    for u, p in zip(result["unpaced"], result["paced"], strict=True):
        lat = p["latency_ms"]
        lines.append(f"{u['hops']:>4} {u['throughput_fps'] or 0:>12.0f} {lat['p50']:>13.3f} {lat['p95']:>8.3f} {lat['p99']:>8.3f} {p['dropped']:>6}")
    per_hop = result["added_latency_per_hop_ms"]
    lines.append(f"added latency per queue hop: p50 {per_hop['p50']} ms, p95 {per_hop['p95']} ms, p99 {per_hop['p99']} ms")
    return "\n".join(lines)


def model_gflops_per_face(spec: GeneratorSpec) -> float:
    """Floating-point operations of one face through the generator (multiply-add = 2)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        spec.module.float()(*spec.example_inputs(1))
    return counter.get_total_flops() / 1e9


def measured_peak_tflops(device: str) -> float:
    """The dense matrix-product rate this device reaches (FP16 on CUDA, FP32 on CPU), measured."""
    import torch

    if device == "cuda":
        n, dtype = 8192, torch.float16
    else:
        n, dtype = 1024, torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    if device == "cuda":
        torch.cuda.synchronize()
    repeats = 20 if device == "cuda" else 5
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device == "cuda":
        torch.cuda.synchronize()
    return 2 * n**3 * repeats / (time.perf_counter() - t0) / 1e12


def time_runner(runner: Runner, inputs: tuple[Any, ...], *, warmup: int = 10, iters: int = 50) -> dict[str, float]:
    """Median and p95 milliseconds per call, synchronising the GPU around each call."""
    import statistics

    import torch

    cuda = runner.device.type == "cuda"
    inputs = tuple(t.to(device=runner.device, dtype=runner.dtype) for t in inputs)
    for _ in range(warmup):
        runner(*inputs)
    samples = []
    for _ in range(iters):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        runner(*inputs)
        if cuda:
            torch.cuda.synchronize()
        samples.append((time.perf_counter() - t0) * 1e3)
    samples.sort()
    return {"median_ms": round(statistics.median(samples), 4), "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 4)}


def bench_generator(spec: GeneratorSpec, engine_dir: Path, *, batches: Sequence[int] = (1, 2, 4), backends: Sequence[str] | None = None, iters: int = 50) -> dict[str, Any]:
    """ms per face for every backend that runs here, at each batch size, against the device's peak."""
    import torch

    from realtime.inference.backend import DEFAULT_ORDER, make_backends

    gflops = model_gflops_per_face(spec)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    peak = measured_peak_tflops(device)
    rows: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    for backend in make_backends(backends or DEFAULT_ORDER):
        reason = backend.unavailable_reason()
        if reason:
            skipped[backend.name] = reason
            continue
        for batch in batches:
            try:
                runner = backend.load(spec, batch, engine_dir)
                timing = time_runner(runner, spec.example_inputs(batch), iters=iters if runner.device.type == "cuda" else max(3, iters // 10), warmup=10 if runner.device.type == "cuda" else 1)
            except Exception as exc:  # noqa: BLE001 - reported, the next backend is tried
                skipped[f"{backend.name} b{batch}"] = f"{type(exc).__name__}: {str(exc)[:160]}"
                continue
            per_face = timing["median_ms"] / batch
            rows.append({
                "backend": backend.name, "batch": batch, **timing, "ms_per_face": round(per_face, 4),
                "tflops": round(gflops * batch / timing["median_ms"], 3), "detail": runner.detail,
                "dtype": str(runner.dtype).replace("torch.", ""), "device": str(runner.device),
            })
    return {
        "benchmark": "generator", "architecture": spec.architecture, "crop_size": spec.crop_size,
        "gflops_per_face": round(gflops, 3), "device": device_info(), "peak_tflops": round(peak, 2),
        "peak_kind": "FP16 matmul 8192³" if device == "cuda" else "FP32 matmul 1024³", "rows": rows, "skipped": skipped,
    }


def format_generator_table(result: dict[str, Any]) -> str:
    lines = [
        f"generator benchmark: {result['architecture']} at {result['crop_size']} px, {result['gflops_per_face']} GFLOP per face; "
        f"measured peak {result['peak_tflops']} TFLOP/s ({result['peak_kind']})",
        f"{'backend':<11} {'batch':>5} {'ms/call':>9} {'p95':>8} {'ms/face':>9} {'TFLOP/s':>9} {'of peak':>8}",
    ]
    for row in result["rows"]:
        share = 100 * row["tflops"] / result["peak_tflops"] if result["peak_tflops"] else 0
        lines.append(f"{row['backend']:<11} {row['batch']:>5} {row['median_ms']:>9.3f} {row['p95_ms']:>8.3f} {row['ms_per_face']:>9.3f} {row['tflops']:>9.2f} {share:>7.1f}%")
    for name, reason in result["skipped"].items():
        lines.append(f"skipped {name}: {reason}")
    return "\n".join(lines)


def bench_blend(*, width: int = 1920, height: int = 1080, devices: Sequence[str] | None = None, iters: int = 200, crop_size: int = 256, fuse: str = "off", engines_dir: str | None = None, detail: float = 0.0) -> dict[str, Any]:
    """Blend cost per frame (one face's ``crop_size``² swap, its mask, colour matching, ``detail`` restore,
    paste-back and, on CUDA, the frame's upload and download), for each device and colour mode."""
    import statistics

    import numpy as np
    import torch

    from realtime.bundle import Detection, FrameBundle, HostSwapped, Swapped
    from realtime.config import BlendConfig, BlendFuse, TrackConfig
    from realtime.gpu.frames import DeviceFrames
    from realtime.live import LiveSettings
    from realtime.stages.blend import BlendStage
    from realtime.stages.track import FaceTracker
    from realtime.testing import make_face_landmarks
    from realtime.vision.align import warp_crop

    devices = list(devices or (["cpu", "cuda", "cuda-frame"] if torch.cuda.is_available() else ["cpu"]))
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    tracker = FaceTracker(TrackConfig(birth_hits=1, crop_size=crop_size, fade_s=0.0))
    faces = tracker.step([Detection(make_face_landmarks((width / 2, height / 2), height / 6))], 0.0, 0.0)
    crop = warp_crop(frame, faces[0].crop_from_frame, crop_size)
    rows = []
    for device in devices:
        # "cuda-frame": the frame kept on the GPU (one upload, one download of the whole frame, the
        # crop already there as the swap stage leaves it); "cuda": only the face's box crosses
        uploader = DeviceFrames("cuda") if device == "cuda-frame" else None
        crop_on_device = torch.from_numpy(crop).cuda() if uploader is not None else None
        for colour in ("off", "smoothed"):
            stage = BlendStage(LiveSettings(BlendConfig(colour=colour, blend_compile=cast(BlendFuse, fuse), detail=detail)), device="cuda" if uploader else device, crop_size=crop_size, engines_dir=engines_dir)
            t_setup = time.perf_counter()
            stage.setup()
            setup_s = time.perf_counter() - t_setup  # with fusing: its compile (warm when build-engines saved the kernels)
            samples = []
            for i in range(iters + 10):
                bundle = FrameBundle(i, 0, frame, i / 60)
                bundle.faces = faces
                faces[0].swapped = HostSwapped(crop) if crop_on_device is None else Swapped(crop_on_device)
                t0 = time.perf_counter()
                if uploader is not None:
                    bundle.device_frame = uploader.upload(frame)
                stage.process(bundle)
                bundle.wait_for_frame()  # a host frame: the GPU path has synchronised
                if i >= 10:
                    samples.append((time.perf_counter() - t0) * 1e3)
            samples.sort()
            fused = bool(stage.describe().get("fused", False))
            rows.append({"device": device, "colour": colour, "fused": fused, "setup_s": round(setup_s, 2), "median_ms": round(statistics.median(samples), 4), "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 4)})
            stage.teardown()
    return {"benchmark": "blend", "frame_size": f"{width}x{height}", "faces": 1, "crop": crop_size, "detail": detail, "fused": any(r["fused"] for r in rows), "fuse_mode": fuse, "device": device_info(), "rows": rows}


def format_blend_table(result: dict[str, Any]) -> str:
    lines = [f"blend benchmark, {result['frame_size']}, one {result['crop']}-px face{' (fused)' if result.get('fused') else ''}, detail {result.get('detail', 0.0)} (mask, colour match, detail, paste-back; cuda: the face's box up and down; cuda-frame: the whole frame up and down)"]
    lines += [f"{r['device']:<10} colour {r['colour']:<9} median {r['median_ms']:.3f} ms  p95 {r['p95_ms']:.3f} ms  (set-up {r.get('setup_s', 0):.1f} s)" for r in result["rows"]]
    return "\n".join(lines)
