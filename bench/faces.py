"""Face tracking quality on real clips and on the ground-truth clip (docs/BENCHMARKS-HISTORY.md, section 3).

    python3 bench/faces.py OUTDIR [--videos ../shared/data/videos]

For every single-face clip: `realtime track` writes a track log, from which this computes the
detection rate, jitter of raw and smoothed landmarks on still stretches and the lag of the smoothed
track on moving stretches. A two-face clip (two clips side by side) checks that ids stay stable.
The ground-truth clip (a photo moved along a known path) gives errors in pixels against the truth.

Real clips have no truly still stretch: a "still" talking head still moves a little, and that real
micro-motion is most of what the raw jitter measures there (the smoother must follow it). So each
clip also gives a *still-head clip*: one of its frames held for 4 s with fresh webcam-like sensor
noise per frame (σ grey levels, then H.264), where every landmark step is detector noise against
a known, constant truth. Writes OUTDIR/faces.json and OUTDIR/faces.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realtime.cli import main as realtime_main  # noqa: E402
from realtime.io.track_log import load_track_log  # noqa: E402
from realtime.vision import metrics  # noqa: E402

TWO_FACE_PAIR = ("liveportrait_d0.mp4", "liveportrait_d3.mp4")


def measure_clip(clip: Path, workdir: Path, extra: list[str]) -> dict[str, object]:
    log_path = workdir / f"{clip.stem}.json"
    t0 = time.perf_counter()
    code = realtime_main(["track", "--input", str(clip), "--json", str(log_path), "--quiet", "--birth-hits", "1", *extra])
    if code != 0:
        return {"clip": clip.name, "error": f"exit {code}"}
    log = load_track_log(log_path)
    frames = len(log.times)
    main_id = max(log.smoothed, key=lambda i: np.isfinite(log.smoothed[i][:, 0, 0]).sum())
    raw, smoothed = log.raw[main_id], log.smoothed[main_id]
    still, moving = metrics.still_mask(raw), metrics.moving_mask(raw)
    jitter_raw, jitter_smoothed = metrics.jitter(raw, raw, still), metrics.jitter(smoothed, raw, still)
    return {
        "clip": clip.name,
        "frames": frames,
        "seconds": round(time.perf_counter() - t0, 2),
        "detection_rate": metrics.detection_rate(log.detection_counts),
        "track_ids": len(log.smoothed),
        "still_frames": int(still.sum()),
        "moving_frames": int(moving.sum()),
        "jitter_raw": jitter_raw,
        "jitter_smoothed": jitter_smoothed,
        "jitter_ratio": jitter_smoothed / jitter_raw if still.any() else None,
        "lag_raw_frames": metrics.lag_frames(raw, raw, moving) if moving.sum() > 20 else None,
        "lag_smoothed_frames": metrics.lag_frames(smoothed, raw, moving) if moving.sum() > 20 else None,
    }


def make_side_by_side(left: Path, right: Path, out: Path) -> Path:
    """Two talking heads in one frame, as long as the shorter clip."""
    import av

    def frames(path: Path) -> list[np.ndarray]:
        with av.open(str(path)) as container:
            return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]

    a, b = frames(left), frames(right)
    height = min(a[0].shape[0], b[0].shape[0])
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = a[0].shape[1] + b[0].shape[1], height, "yuv420p"
        stream.options = {"crf": "16", "preset": "veryfast"}
        for fa, fb in zip(a, b, strict=False):
            frame = av.VideoFrame.from_ndarray(np.hstack([fa[:height], fb[:height]]), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out


def measure_two_faces(videos: Path, workdir: Path) -> dict[str, object]:
    clip = make_side_by_side(videos / TWO_FACE_PAIR[0], videos / TWO_FACE_PAIR[1], workdir / "two_faces.mp4")
    log_path = workdir / "two_faces.json"
    realtime_main(["track", "--input", str(clip), "--json", str(log_path), "--quiet", "--max-faces", "2", "--birth-hits", "1"])
    log = load_track_log(log_path)
    presence = {i: float(np.isfinite(track[:, 0, 0]).mean()) for i, track in log.smoothed.items()}
    sides = {i: float(np.nanmean(track[:, :, 0])) for i, track in log.smoothed.items()}
    return {"clip": f"{TWO_FACE_PAIR[0]} | {TWO_FACE_PAIR[1]} side by side", "frames": len(log.times), "track_ids": len(log.smoothed), "presence": presence, "mean_x": sides}


def make_still_clip(clip: Path, out: Path, sigma: float, *, frames: int = 120, at_frame: int = 20) -> Path:
    """One frame of ``clip`` held for ``frames`` frames at 30 fps, each with fresh Gaussian sensor
    noise of ``sigma`` grey levels, encoded like a webcam recording (H.264, crf 18)."""
    import av

    with av.open(str(clip)) as container:
        image = next(f for i, f in enumerate(container.decode(video=0)) if i == at_frame).to_ndarray(format="rgb24")
    height, width = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    rng = np.random.default_rng(0)
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        for _ in range(frames):
            noisy = np.clip(image[:height, :width] + rng.normal(0.0, sigma, (height, width, 3)), 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(noisy, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out


def measure_still_head(clip: Path, workdir: Path, sigma: float, settle_frames: int = 15) -> dict[str, object]:
    """Raw and smoothed jitter on a truly still head (``make_still_clip``): the truth is constant,
    so every frame-to-frame step after the smoother has settled is jitter."""
    still_clip = make_still_clip(clip, workdir / f"{clip.stem}-still{sigma:g}.mp4", sigma)
    log_path = workdir / f"{still_clip.stem}.json"
    realtime_main(["track", "--input", str(still_clip), "--json", str(log_path), "--quiet", "--birth-hits", "1"])
    log = load_track_log(log_path)
    main_id = max(log.smoothed, key=lambda i: np.isfinite(log.smoothed[i][:, 0, 0]).sum())
    raw, smoothed = log.raw[main_id], log.smoothed[main_id]
    mask = np.zeros(len(raw), bool)
    mask[settle_frames:] = True
    whole = len(raw)  # a trend window as long as the clip: the constant truth
    jitter_raw = metrics.jitter(raw, raw, mask, window=whole)
    jitter_smoothed = metrics.jitter(smoothed, raw, mask, window=whole)
    return {"clip": clip.name, "sigma": sigma, "jitter_raw": jitter_raw, "jitter_smoothed": jitter_smoothed, "jitter_ratio": jitter_smoothed / jitter_raw}


def measure_ground_truth(frames: int = 180) -> dict[str, object]:
    from realtime.testing import track_ground_truth_clip

    raw_a, smoothed_a, truth_a = track_ground_truth_clip(frames, sensor_noise=8.0)

    def jitter(track: np.ndarray, segments: list[tuple[int, int]]) -> float:
        step = np.linalg.norm(np.diff(track - truth_a, axis=0), axis=-1).mean(axis=1)
        return float(np.mean([step[a:b - 1].mean() for a, b in segments]))

    settled = [(5, 45), (90, 120), (165, 180)]
    just_stopped = [(75, 90), (150, 165)]
    moving = np.zeros(frames, bool)
    moving[47:75] = moving[122:150] = True
    iod = float(np.median(metrics.inter_ocular_series(truth_a)))
    return {
        "frames": frames,
        "inter_ocular_px": iod,
        "error_px_raw": float(np.linalg.norm(raw_a - truth_a, axis=-1).mean()),
        "error_px_smoothed": float(np.linalg.norm(smoothed_a - truth_a, axis=-1).mean()),
        "jitter_px_still_raw": jitter(raw_a, settled),
        "jitter_px_still_smoothed": jitter(smoothed_a, settled),
        "jitter_px_first_half_second_after_motion_raw": jitter(raw_a, just_stopped),
        "jitter_px_first_half_second_after_motion_smoothed": jitter(smoothed_a, just_stopped),
        "lag_frames_raw": metrics.lag_frames(raw_a, truth_a, moving),
        "lag_frames_smoothed": metrics.lag_frames(smoothed_a, truth_a, moving),
    }


def plot(results: list[dict[str, object]], still_heads: list[dict[str, object]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results if r.get("jitter_ratio") is not None]
    fig, (ax, ax_still) = plt.subplots(1, 2, figsize=(15, 4.5), gridspec_kw={"width_ratios": [1, 1.6]})
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["jitter_raw"] for r in rows], 0.4, label="raw landmarks")
    ax.bar(x + 0.2, [r["jitter_smoothed"] for r in rows], 0.4, label="smoothed")
    ax.set_xticks(x, [str(r["clip"]).replace(".mp4", "") for r in rows], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("jitter on still stretches (inter-ocular units / frame)")
    ax.set_title("real clips, still stretches (mostly real micro-motion)", fontsize=10)
    ax.legend()
    clips = sorted({str(r["clip"]) for r in still_heads})
    sigmas = sorted({float(r["sigma"]) for r in still_heads})
    width = 0.8 / len(sigmas)
    for k, sigma in enumerate(sigmas):
        ratios = [next(r["jitter_ratio"] for r in still_heads if r["clip"] == c and r["sigma"] == sigma) for c in clips]
        ax_still.bar(np.arange(len(clips)) + (k - (len(sigmas) - 1) / 2) * width, ratios, width, label=f"sensor noise σ={sigma:g}")
    ax_still.axhline(0.5, color="k", lw=0.8, ls="--", label="target: ½")
    ax_still.set_xticks(np.arange(len(clips)), [c.replace(".mp4", "")[:22] for c in clips], rotation=30, ha="right", fontsize=8)
    ax_still.set_ylabel("smoothed / raw jitter")
    ax_still.set_title("still-head clips: one frame held, fresh sensor noise (all jitter is detector noise)", fontsize=10)
    ax_still.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--videos", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "videos")
    parser.add_argument("--detect-max-side", default="640")
    parser.add_argument("--max-faces", default="1", help="2 makes MediaPipe re-detect every frame: noisier raw landmarks")
    parser.add_argument("--still-noise", default="3,6,12", help="sensor noise levels (grey levels) of the still-head clips; empty: skip them")
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    clips = sorted(p for p in args.videos.glob("*.mp4"))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, clip in enumerate(clips):
            result = measure_clip(clip, Path(tmp), ["--detect-max-side", args.detect_max_side, "--max-faces", args.max_faces])
            results.append(result)
            print(f"[{index + 1}/{len(clips)}] {json.dumps(result)}", flush=True)
        two = measure_two_faces(args.videos, Path(tmp))
        print(json.dumps(two), flush=True)
        sigmas = [float(v) for v in args.still_noise.split(",") if v.strip()]
        still_heads = []
        for index, (sigma, clip) in enumerate((s, c) for s in sigmas for c in clips):
            still_heads.append(measure_still_head(clip, Path(tmp), sigma))
            print(f"[still {index + 1}/{len(sigmas) * len(clips)}] {json.dumps(still_heads[-1])}", flush=True)
    truth = measure_ground_truth()
    print(json.dumps(truth), flush=True)
    still = [r for r in results if r.get("still_frames")]
    weights = np.array([r["still_frames"] for r in still], float)
    pooled = float(np.sum(weights * [r["jitter_smoothed"] for r in still]) / np.sum(weights * [r["jitter_raw"] for r in still]))
    lags = [r["lag_smoothed_frames"] for r in results if r.get("lag_smoothed_frames") is not None]
    summary = {
        "clips": len(results),
        "detection_rate_min": min(r["detection_rate"] for r in results if "detection_rate" in r),
        "jitter_ratio_pooled": pooled,
        "lag_frames_mean": float(np.mean(lags)),
        "lag_frames_max": float(np.max(lags)),
        "still_head_jitter_ratio_pooled": {
            f"sigma_{sigma:g}": float(sum(r["jitter_smoothed"] for r in still_heads if r["sigma"] == sigma) / sum(r["jitter_raw"] for r in still_heads if r["sigma"] == sigma))
            for sigma in sigmas
        },
        "still_head_jitter_ratio_max": {f"sigma_{sigma:g}": max(r["jitter_ratio"] for r in still_heads if r["sigma"] == sigma) for sigma in sigmas},
    }
    print(json.dumps(summary))
    (args.outdir / "faces.json").write_text(json.dumps({"summary": summary, "clips": results, "two_faces": two, "ground_truth": truth, "still_heads": still_heads}, indent=2) + "\n")
    plot(results, still_heads, args.outdir / "faces.png")


if __name__ == "__main__":
    main()
