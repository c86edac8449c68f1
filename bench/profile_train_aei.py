"""Where an AEI-Net training step's time goes, and how far it is from the GPU's peak: the step's
phases (data and augmentation, identity encoder, generator, discriminator, losses, backward,
optimisers, the loss read-back), pairs/s, FLOPs per pair (counted by torch's FLOP counter on one
step) and achieved TFLOP/s; optionally a torch.profiler table and Chrome trace. Writes a JSON
report and a PNG bar chart of the phases.
    python3 bench/profile_train_aei.py OUTDIR [--faces DATASET ...] [--batch 32] [--steps 30]
    (without --faces: random 112-px crops, for timing only)"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from realtime.train.aei import AEITrainer  # noqa: E402
from realtime.train.options import AEIOptions  # noqa: E402
from realtime.train.phases import PhaseClock  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def flops_per_step(trainer: AEITrainer) -> float:
    """FLOPs of one step, counted on the eager functions (the counter does not see inside a
    compiled graph; the arithmetic is the same)."""
    from torch.utils.flop_counter import FlopCounterMode

    compiled = trainer.generator_objective, trainer.critic_objective
    trainer.generator_objective, trainer.critic_objective = trainer._generator_objective, trainer._critic_objective
    counter = FlopCounterMode(display=False)
    try:
        with counter:
            trainer.train_step()
    finally:
        trainer.generator_objective, trainer.critic_objective = compiled
    return float(counter.get_total_flops())


def plot(phases: dict[str, float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(phases)
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(names) + 1.2))
    ax.barh(names[::-1], [phases[n] for n in names[::-1]], color="#4a8")
    ax.set_xlabel("ms per step (GPU timeline)" if "cuda" in title else "ms per step")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--faces", type=Path, nargs="*", default=[])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=8, help="steps before timing (the first compiles the step)")
    parser.add_argument("--no-compile", action="store_true", help="time the eager step")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--encoder", type=Path, default=ROOT / "models" / "identity-encoder-v1.safetensors")
    parser.add_argument("--trace", action="store_true", help="also a torch.profiler table and Chrome trace of 5 steps")
    parser.add_argument("--crop-size", type=int, default=128)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.faces:
        from realtime.train.data import face_records, load_crops

        crops = load_crops(face_records(args.faces))
    else:
        crops = np.random.default_rng(0).integers(0, 256, (512, 112, 112, 3), dtype=np.uint8)
    options = AEIOptions(batch=args.batch, steps=10**9, crop_size=args.crop_size, sample_every=0, save_every=10**9, compile=not args.no_compile)
    trainer = AEITrainer(crops, args.encoder, Path(tempfile.mkdtemp()), options, args.device)
    device = trainer.device
    t_warm = time.perf_counter()
    for index in range(args.warmup):
        trainer.train_step()
        print(f"warm-up {index + 1}/{args.warmup} ({time.perf_counter() - t_warm:.0f} s)", flush=True)
    warmup_s = time.perf_counter() - t_warm
    flops = flops_per_step(trainer)
    _sync(device)
    t0 = time.perf_counter()
    for index in range(args.steps):
        trainer.advance()  # as the training loop steps: losses stay on the device, no clock
        if (index + 1) % 10 == 0:
            rate = (index + 1) / (time.perf_counter() - t0)
            print(f"[{index + 1}/{args.steps}] {rate:.1f} steps/s, ETA {(args.steps - index - 1) / rate:.0f} s", flush=True)
    _sync(device)
    wall_s = time.perf_counter() - t0
    # the phases on separate steps: reading the clock's events waits for the GPU after each step
    clock = PhaseClock(device)
    trainer.clock = clock
    for _ in range(min(args.steps, 10)):
        trainer.advance()
    trainer.clock = PhaseClock(device)
    phases = clock.summary()
    step_ms = wall_s / args.steps * 1000
    pairs_per_s = args.batch * args.steps / wall_s
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__, "compiled": options.compile and device.type == "cuda", "warmup_s": round(warmup_s, 1), "batch": args.batch, "crop_size": args.crop_size, "faces": len(crops), "steps": args.steps,
        "step_ms": round(step_ms, 3), "pairs_per_s": round(pairs_per_s, 1), "phases_ms": phases,
        "phases_sum_ms": round(sum(phases.values()), 3), "gflop_per_pair": round(flops / args.batch / 1e9, 3),
        "achieved_tflops": round(flops * args.steps / wall_s / 1e12, 3),
    }
    if args.trace:
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with profile(activities=activities) as profiler:
            for _ in range(5):
                trainer.advance()
            _sync(device)
        key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
        (args.out / "profile-table.txt").write_text(profiler.key_averages().table(sort_by=key, row_limit=30))
        profiler.export_chrome_trace(str(args.out / "trace.json"))
        result["kernel_launches_per_step"] = sum(e.count for e in profiler.key_averages() if e.device_type.name == "CUDA") // 5 if device.type == "cuda" else None
    (args.out / "profile.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(phases, args.out / "phases.png", f"AEI-Net step on {result['device']}, batch {args.batch}: {step_ms:.1f} ms, {pairs_per_s:.0f} pairs/s")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
