"""Where the GPU blend's time goes (1080p, one face, CUDA): per-phase CPU time, the replayed
graph's GPU time, and variants of what the graph holds.

    python3 bench/profile_blend.py [--crop-size 256] [--colour smoothed] [--frames 300] [--json out.json]

Sections:
  1. per frame, per path ("box": the face's box up and down; "frame": the frame kept on the GPU,
     the bench's upload and download included), fused and not: wall time, and the CPU time spent in
     the planning (numpy), the graph's launch, and (box path) the wait for the GPU;
  2. the GPU time of one replay of each graph variant on the same region (CUDA events, median);
  3. the kernels of the default graph (torch.profiler, GPU time);
  4. the host-side pieces of one face's frame, alone (µs): planning, packing, copies.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realtime.bundle import Detection, Face, HostSwapped, Swapped  # noqa: E402
from realtime.config import BlendConfig, TrackConfig  # noqa: E402
from realtime.gpu.frames import DeviceFrames  # noqa: E402
from realtime.stages.blend.gpu import GpuBlender  # noqa: E402
from realtime.stages.blend.region import blend_region, compile_crop_core, new_colour_state  # noqa: E402
from realtime.stages.track import FaceTracker  # noqa: E402
from realtime.testing import make_face_landmarks  # noqa: E402
from realtime.vision.align import warp_crop  # noqa: E402


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1e3, 4)


def timed(owner: Any, name: str, totals: dict[str, float]) -> None:
    """Wrap ``owner.name`` so its wall time adds up in ``totals[name]``."""
    inner = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            totals[name] += time.perf_counter() - t0

    setattr(owner, name, wrapper)


def scene(crop_size: int) -> tuple[np.ndarray, Face]:
    frame = np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    face = FaceTracker(TrackConfig(birth_hits=1, crop_size=crop_size, fade_s=0.0)).step([Detection(make_face_landmarks((960, 540), 180))], 0.0, 0.0)[0]
    face.swapped = HostSwapped(warp_crop(frame, face.crop_from_frame, crop_size))
    return frame, face


def per_frame(path: str, fuse: bool, settings: BlendConfig, crop_size: int, frames: int) -> dict[str, Any]:
    frame, face = scene(crop_size)
    blender = GpuBlender("cuda", fuse=fuse)
    blender.warm_up(crop_size, settings)
    blender.prebuild(crop_size, settings, 1920, 1080)
    blender.live = True
    uploader = DeviceFrames("cuda") if path == "frame" else None
    crop_device = Swapped(torch.from_numpy(face.swapped.host().crop).cuda())
    totals: dict[str, float] = defaultdict(float)
    for name in ("_plan", "_replay", "_run"):
        timed(blender, name, totals)
    walls = []
    for i in range(frames + 20):
        if i == 20:
            totals.clear()
        t0 = time.perf_counter()
        if uploader is None:
            blender.composite(frame, [face], i / 60, settings)
        else:
            face.swapped = crop_device
            _, ready = blender.composite_device(uploader.upload(frame), [face], i / 60, settings)
            ready.synchronize()
        if i >= 20:
            walls.append(time.perf_counter() - t0)
    row = {"path": path, "fused": blender.fuse, "median_ms": median_ms(walls), "p95_ms": round(sorted(walls)[int(0.95 * len(walls))] * 1e3, 4)}
    row |= {f"cpu{name}_ms": round(total / frames * 1e3, 4) for name, total in totals.items()}
    blender.close()
    return row


def gpu_time(run: Callable[[], Any], stream: torch.cuda.Stream, iters: int = 200) -> float:
    """Median GPU ms of ``run`` on ``stream`` (events either side)."""
    samples = []
    with torch.cuda.stream(stream):
        for _ in range(iters):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            run()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end))
    return round(statistics.median(samples), 4)


def graph_variants(settings: BlendConfig, crop_size: int) -> tuple[dict[str, float], str]:
    """GPU ms of one replay of the region graph: eager maths, fused crop space (the default), and
    the paste compiled too (an experiment: dynamic shapes, so one compile serves every box)."""
    frame, face = scene(crop_size)
    blender = GpuBlender("cuda", fuse=True)
    blender.warm_up(crop_size, settings)
    plan = blender._plan(face, 1920, 1080, 0.0, settings, False)
    assert plan is not None
    slot = blender._slot(plan.shape)
    plan.pack(slot.take_params().numpy())
    x0, y0, x1, y1 = plan.box
    slot.region.copy_(torch.from_numpy(frame[y0:y1, x0:x1].copy()).cuda())
    slot.crop.copy_(torch.from_numpy(face.swapped.host().crop).cuda())
    slot.params.copy_(slot.params_in_use.cuda())
    torch.cuda.synchronize()
    stream = torch.cuda.Stream()
    shape = plan.shape
    fused_core = compile_crop_core(shape, "cuda")
    results: dict[str, float] = {}

    def capture(fn: Callable[[], Any]) -> torch.cuda.CUDAGraph:
        with torch.cuda.stream(stream):
            for _ in range(3):
                fn()
        stream.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=stream):
            fn()
        return graph

    state = new_colour_state("cuda")
    variants: dict[str, Callable[[], Any]] = {
        "eager maths, eager paste": lambda: blend_region(slot.region, slot.crop, slot.generator_mask, slot.params, state, shape),
        "fused crop space, eager paste (default)": lambda: blend_region(slot.region, slot.crop, slot.generator_mask, slot.params, state, shape, fused_core),
    }
    whole = torch.compile(lambda: blend_region(slot.region, slot.crop, slot.generator_mask, slot.params, state, shape), dynamic=False)
    variants["whole region function compiled (per box shape)"] = whole
    for name, fn in variants.items():
        try:
            graph = capture(fn)
            results[name] = gpu_time(graph.replay, stream)
            results[name + ", not captured"] = gpu_time(fn, stream, iters=50)
        except Exception as exc:  # noqa: BLE001 - an experiment: report and go on
            results[name] = float("nan")
            print(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    graph = capture(variants["fused crop space, eager paste (default)"])
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof, torch.cuda.stream(stream):
        for _ in range(50):
            graph.replay()
        stream.synchronize()
    table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=25, max_name_column_width=70)
    blender.close()
    return results, table


def host_pieces(settings: BlendConfig, crop_size: int, iters: int = 2000) -> tuple[dict[str, float], str]:
    """µs per call of the blend's host work for one face, and a cProfile of the planning."""
    import cProfile
    import io
    import pstats

    frame, face = scene(crop_size)
    blender = GpuBlender("torch-cpu")
    plan = blender._plan(face, 1920, 1080, 0.0, settings, False)
    assert plan is not None
    x0, y0, x1, y1 = plan.box
    params = np.empty(len(plan.pack()), np.float32)
    pinned = torch.cuda.is_available()  # as the blender's buffers; plain memory on a CPU machine
    region = torch.empty((y1 - y0, x1 - x0, 3), dtype=torch.uint8, pin_memory=pinned).numpy()
    crop = torch.empty(face.swapped.host().crop.shape, dtype=torch.uint8, pin_memory=pinned).numpy()
    pieces: dict[str, Callable[[], Any]] = {
        "plan": lambda: blender._plan(face, 1920, 1080, 0.0, settings, False),
        "pack": lambda: plan.pack(params),
        "region into pinned": lambda: region.__setitem__(Ellipsis, frame[y0:y1, x0:x1]),
        "crop into pinned": lambda: crop.__setitem__(Ellipsis, face.swapped.host().crop),
        "region back into the frame": lambda: frame.__setitem__((slice(y0, y1), slice(x0, x1)), region),
    }
    result = {}
    for name, piece in pieces.items():
        for _ in range(50):
            piece()
        t0 = time.perf_counter()
        for _ in range(iters):
            piece()
        result[name] = round((time.perf_counter() - t0) / iters * 1e6, 2)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(iters):
        blender._plan(face, 1920, 1080, 0.0, settings, False)
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(10)
    return result, text.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--crop-size", type=int, default=256)
    parser.add_argument("--colour", default="smoothed")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    settings = BlendConfig(colour=args.colour)
    rows = [per_frame(path, fuse, settings, args.crop_size, args.frames) for fuse in (False, True) for path in ("box", "frame")]
    print(f"1. per frame, 1080p, one {args.crop_size}-px face, colour {args.colour} (ms; cpu_* = CPU time inside each call, per frame)")
    for row in rows:
        print("  " + "  ".join(f"{k} {v}" for k, v in row.items()))
    variants, table = graph_variants(settings, args.crop_size)
    print("2. GPU time of one replay (ms, median of 200)")
    for name, ms in variants.items():
        print(f"  {ms:8.4f}  {name}")
    print("3. kernels of the default graph, 50 replays\n" + table)
    pieces, plan_profile = host_pieces(settings, args.crop_size)
    print("4. host work of one face, alone (µs a call): " + ", ".join(f"{k} {v}" for k, v in pieces.items()))
    print(plan_profile)
    if args.json:
        args.json.write_text(json.dumps({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "crop": args.crop_size, "colour": args.colour, "per_frame": rows, "graph_gpu_ms": variants, "host_us": pieces}, indent=1))


if __name__ == "__main__":
    main()
