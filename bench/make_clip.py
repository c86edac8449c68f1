"""Make a benchmark clip: scale a video to fit a given size (e.g. a talking head into 1920x1080,
keeping its aspect ratio, centred on a dark background) and loop it to a given length, as H.264. Usage: python3 bench/make_clip.py IN OUT [--size 1920x1080] [--seconds 20]
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction

import av
import numpy as np


def fit_frame(frame: av.VideoFrame, width: int, height: int) -> av.VideoFrame:
    """Scale to fit inside width×height without distortion, centred on a dark canvas."""
    scale = min(width / frame.width, height / frame.height)
    w, h = int(frame.width * scale) // 2 * 2, int(frame.height * scale) // 2 * 2
    inner = frame.reformat(width=w, height=h, format="rgb24").to_ndarray()
    canvas = np.full((height, width, 3), 24, np.uint8)
    y, x = (height - h) // 2, (width - w) // 2
    canvas[y : y + h, x : x + w] = inner
    return av.VideoFrame.from_ndarray(canvas, format="rgb24").reformat(format="yuv420p")


def _tiled(frames: list[av.VideoFrame], n: int, width: int, height: int) -> list[av.VideoFrame]:
    """Each cell shows the clip from a different starting point, so the faces move independently."""
    arrays = [f.to_ndarray(format="rgb24") for f in frames]
    cell_h, cell_w = arrays[0].shape[:2]
    out = []
    for i in range(len(arrays)):
        canvas = np.full((height, width, 3), 24, np.uint8)
        for cell in range(n * n):
            y, x = divmod(cell, n)
            canvas[y * cell_h : (y + 1) * cell_h, x * cell_w : (x + 1) * cell_w] = arrays[(i + cell * len(arrays) // (n * n)) % len(arrays)]
        out.append(av.VideoFrame.from_ndarray(canvas, format="rgb24").reformat(format="yuv420p"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--fps", type=float, help="retime to this frame rate (motion speeds up or slows down)")
    parser.add_argument("--tile", type=int, default=1, help="N: an N×N grid of the clip (N² faces), each cell offset in time")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    with av.open(args.input) as src:
        stream = src.streams.video[0]
        fps = Fraction(args.fps).limit_denominator(1001) if args.fps else stream.average_rate or Fraction(25)
        frames = [fit_frame(f, width // args.tile, height // args.tile) for f in src.decode(stream)]
    if args.tile > 1:
        frames = _tiled(frames, args.tile, width, height)
    total = int(args.seconds * fps)
    t0 = time.perf_counter()
    with av.open(args.output, "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"crf": "18", "preset": "veryfast"}
        for i in range(total):
            # ping-pong through the clip so the loop has no jump cut
            cycle = 2 * len(frames) - 2 or 1
            k = i % cycle
            frame = frames[k if k < len(frames) else cycle - k]
            frame.pts, frame.time_base = i, 1 / fps
            for packet in video.encode(frame):
                out.mux(packet)
            if i % 100 == 0:
                elapsed = time.perf_counter() - t0
                eta = elapsed / (i + 1) * (total - i - 1)
                print(f"make_clip: frame {i}/{total}, ETA {eta:.0f} s", flush=True)
        for packet in video.encode(None):
            out.mux(packet)
    print(f"make_clip: wrote {args.output}: {total} frames {width}x{height} @ {float(fps):g} fps")


if __name__ == "__main__":
    main()
