"""Study (closed; BENCHMARKS-HISTORY.md §18): does --steady lag a face that moves? One clip through the pipeline twice (--steady 0 and the
given weight, all else the defaults); the six frames in a row where the face moves most inside its
aligned crop (a blink, a word), eyes to mouth at full 1080p resolution: a row each, and their
difference ×4 below. Identical rows: nothing was averaged while the face moved.
    python3 bench/studies/steady_motion.py OUT.jpg [--clip liveportrait_d0] [--weight 0.5] [--frames 90]"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from clip_quality import Keep, fitted_clip  # noqa: E402

from realtime import app  # noqa: E402
from realtime.config import build_config  # noqa: E402
from realtime.stages.swap.steady import face_motion  # noqa: E402
from realtime.vision.align import apply_affine  # noqa: E402

RUN = 6  # frames shown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--clip", default="liveportrait_d0")
    parser.add_argument("--weight", type=float, default=0.5)
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--videos", type=Path, default=ROOT.parent / "shared" / "data" / "videos")
    parser.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "data" / "faces" / "lfw-deepfunneled" / "Lindsay_Davenport" / "Lindsay_Davenport_0001.jpg")
    args = parser.parse_args()
    clip = fitted_clip(args.videos / f"{args.clip}.mp4", Path(tempfile.mkdtemp()) / "clip.mp4", args.frames)
    runs = {}
    for weight in (0.0, args.weight):
        keep = Keep()
        config = build_config(overrides={
            "input": str(clip), "generator": str(ROOT / "models" / "aei-net-v2.safetensors"), "identity_encoder": str(ROOT / "models" / "identity-encoder-v1.safetensors"),
            "source": str(args.source), "backends": ("cpu",), "detect_mode": "sync", "face_safety": "reveal", "quiet": True, "steady": weight,
        })
        app.run(config, extra_sinks=[lambda _info, keep=keep: keep])
        runs[weight] = keep.frames
    frames = runs[0.0]
    motion = [0.0]
    for before, now in zip(frames, frames[1:], strict=False):
        seen = before[1] is not None and now[1] is not None
        motion.append(face_motion(apply_affine(before[3], before[1][:, :2]), apply_affine(now[3], now[1][:, :2])) if seen else 0.0)
    start = int(np.argmax([sum(motion[t : t + RUN]) for t in range(len(motion) - RUN)]))
    landmarks = frames[start][1][:, :2]
    (x0, y0), (x1, y1) = landmarks.min(0).astype(int), landmarks.max(0).astype(int)
    top, bottom = y0 + int(0.2 * (y1 - y0)), y0 + int(0.95 * (y1 - y0))
    rows = [np.concatenate([runs[w][t][0][top:bottom, x0:x1] for t in range(start, start + RUN)], axis=1) for w in (0.0, args.weight)]
    difference = np.abs(rows[0].astype(int) - rows[1].astype(int))
    grid = np.concatenate([*rows, (difference * 4).clip(0, 255).astype(np.uint8)], axis=0)
    cv2.imwrite(str(args.out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
    print(f"frames {start}-{start + RUN - 1}: largest landmark move in the crop {[round(m, 1) for m in motion[start : start + RUN]]} px; "
          f"mean |steady 0 - steady {args.weight}| {difference.mean():.3f} grey levels; wrote {args.out}")


if __name__ == "__main__":
    main()
