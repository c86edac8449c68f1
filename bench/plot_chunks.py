"""The loss curves of consecutive training chunks on one step axis (each chunk's losses.jsonl, in
order), with the chunk boundaries marked: where a weights-only restart re-estimated Adam's moments.
    python3 bench/plot_chunks.py OUT.png RUN1/losses.jsonl RUN2/losses.jsonl ... [--keys id id2 adv d]"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_losses(path: Path) -> list[dict[str, float]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("chunks", type=Path, nargs="+")
    parser.add_argument("--keys", nargs="+", default=["id", "id2", "att", "rec", "fm", "adv", "d"])
    args = parser.parse_args()
    figure, axes = plt.subplots(1, len(args.keys), figsize=(3.2 * len(args.keys), 3.0))
    offset = 0
    for index, path in enumerate(args.chunks):
        rows = read_losses(path)
        steps = [offset + r["step"] for r in rows]
        for axis, key in zip(axes, args.keys, strict=True):
            axis.plot(steps, [r[key] for r in rows], lw=0.8, color=f"C{index}")
            if offset:
                axis.axvline(offset, color="grey", lw=0.5, ls="--")
        offset = steps[-1] if steps else offset
    for axis, key in zip(axes, args.keys, strict=True):
        axis.set_title(key)
        axis.set_xlabel("step (all chunks)")
    figure.suptitle("training chunks (dashed: a weights-only restart)")
    figure.tight_layout()
    figure.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
