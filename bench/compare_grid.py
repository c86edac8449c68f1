"""One grid from several bench/clip_quality.py runs on the same clips: per clip, the input face at its
full 1080p resolution | each run's swap | another photo of the source. The runs must share their
clips and frames (detection is the same, so the face boxes are too).
    python3 bench/compare_grid.py OUT.jpg RUN_DIR [RUN_DIR ...] [--names v1 v2] [--band 0.2 0.7] [--no-reference]
--band keeps only that horizontal band of each face (fractions of its height, e.g. eyes to mouth):
texture is judged at full resolution, so a smaller file shows more faces."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np


def tile(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    if image is None:
        raise SystemExit(f"{path} is missing: run bench/clip_quality.py into that folder first")
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--names", nargs="+")
    parser.add_argument("--band", nargs=2, type=float, metavar=("TOP", "BOTTOM"), help="keep this band of each face, as fractions of its height")
    parser.add_argument("--no-reference", action="store_true", help="leave out the other photo of the source")
    args = parser.parse_args()
    if args.band is not None and not 0.0 <= args.band[0] < args.band[1] <= 1.0:
        raise SystemExit(f"--band {args.band[0]} {args.band[1]}: give TOP < BOTTOM, both between 0 and 1")
    names = args.names or [run.name for run in args.runs]
    if len(names) != len(args.runs):
        raise SystemExit(f"{len(args.runs)} runs but {len(names)} names: give one name a run")
    clips = sorted(p.name[: -len("-input.png")] for p in (args.runs[0] / "faces").glob("*-input.png"))
    if not clips:
        raise SystemExit(f"no faces in {args.runs[0] / 'faces'}: run bench/clip_quality.py into it first")
    rows = []
    for clip in clips:
        tiles = [tile(args.runs[0] / "faces" / f"{clip}-input.png")]
        tiles += [tile(run / "faces" / f"{clip}-swap.png") for run in args.runs]
        height = tiles[0].shape[0]
        if any(t.shape[0] != height for t in tiles):
            raise SystemExit(f"{clip}: the runs cut different face boxes (not the same frames?)")
        if not args.no_reference:
            tiles.append(cv2.resize(tile(args.runs[0] / "faces" / f"{clip}-reference.png"), (height, height)))
        if args.band is not None:
            tiles = [t[int(args.band[0] * height) : int(args.band[1] * height)] for t in tiles]
        label = np.full((28, sum(t.shape[1] for t in tiles), 3), 255, np.uint8)
        text = f"{clip}: input (1080p, full resolution) | " + " | ".join(names) + ("" if args.no_reference else " | another photo of the source")
        cv2.putText(label, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
        rows.append(np.vstack([label, np.hstack(tiles)]))
    width = max(r.shape[1] for r in rows)
    grid = np.vstack([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
    cv2.imwrite(str(args.out), grid, [cv2.IMWRITE_JPEG_QUALITY, 80])
    print(f"wrote {args.out} ({len(clips)} clips × {len(args.runs)} runs)")


if __name__ == "__main__":
    main()
