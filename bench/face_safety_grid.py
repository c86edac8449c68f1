"""A grid a person can look at: what each face-safety policy shows on a real montage (two
people, cut A → B → A), frame by frame around the start and the cuts. Runs `realtime run` once per
policy on the CPU (file → file, sync detection, the shipped AEI-Net) and writes OUT.png.

    python3 bench/face_safety_grid.py CLIP_A CLIP_B OUT.png [--policies reveal hold pixelate blur]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

SIZE = (640, 480)
SHOT_FRAMES = 40


def shot(path: Path, frames: int) -> list[np.ndarray]:
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            image = frame.to_ndarray(format="rgb24")
            scale = min(SIZE[0] / image.shape[1], SIZE[1] / image.shape[0])
            image = cv2.resize(image, (int(image.shape[1] * scale) // 2 * 2, int(image.shape[0] * scale) // 2 * 2))
            canvas = np.full((SIZE[1], SIZE[0], 3), 24, np.uint8)
            y, x = (SIZE[1] - image.shape[0]) // 2, (SIZE[0] - image.shape[1]) // 2
            canvas[y : y + image.shape[0], x : x + image.shape[1]] = image
            out.append(canvas)
            if len(out) == frames:
                break
    return out


def write_clip(frames: list[np.ndarray], path: Path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        stream.options = {"crf": "12", "preset": "veryfast"}
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, 25)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def read_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clip_a", type=Path)
    parser.add_argument("clip_b", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--policies", nargs="+", default=["reveal", "hold", "pixelate", "blur"])
    args = parser.parse_args()
    a, b = shot(args.clip_a, 2 * SHOT_FRAMES), shot(args.clip_b, SHOT_FRAMES)
    montage = a[:SHOT_FRAMES] + b + a[SHOT_FRAMES:]
    cuts = [SHOT_FRAMES, 2 * SHOT_FRAMES]
    picks = [0, 1, 2, cuts[0] - 1, cuts[0], cuts[0] + 1, cuts[0] + 2, cuts[1], cuts[1] + 1, cuts[1] + 2]
    rows, notes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "montage.mp4"
        write_clip(montage, clip)
        rows.append([montage[i] for i in picks])
        for index, policy in enumerate(args.policies, start=1):
            out, report = Path(tmp) / f"{policy}.mp4", Path(tmp) / f"{policy}.json"
            command = [sys.executable, "-m", "realtime", "run", "--input", str(clip), "--output", str(out), "--report", str(report), "--quiet",
                       "--generator", "models/aei-net-v2.safetensors", "--identity-encoder", "models/identity-encoder-v1.safetensors",
                       "--source", "demo", "--face-safety", policy, "--detect-mode", "sync", "--backends", "cpu"]
            print(f"[{index}/{len(args.policies)}] {policy} ...", flush=True)
            subprocess.run(command, check=True)
            frames = read_frames(out)
            rows.append([frames[i] for i in picks])
            info = json.loads(report.read_text())["stages_info"]
            notes.append(f"{policy}: cuts found {info['track']['scene_cuts']}, tracks {info['track']['tracks_started']}, covered {info['blend']['faces_covered']}")
    tile_w, tile_h = 256, 192
    labels = ["input", *args.policies]
    grid = np.full((len(rows) * (tile_h + 4), 90 + len(picks) * (tile_w + 4), 3), 255, np.uint8)
    for r, row in enumerate(rows):
        y = r * (tile_h + 4)
        cv2.putText(grid, labels[r], (4, y + tile_h // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1)
        for c, image in enumerate(row):
            x = 90 + c * (tile_w + 4)
            grid[y : y + tile_h, x : x + tile_w] = cv2.resize(image, (tile_w, tile_h), interpolation=cv2.INTER_AREA)
            if r == 0:
                label = f"frame {picks[c]}" + (" (cut)" if picks[c] in cuts else "")
                cv2.putText(grid, label, (x + 4, y + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 0), 1)
    cv2.imwrite(str(args.out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    for note in notes:
        print(note)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
