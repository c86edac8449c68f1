"""The face report's numbers: one row per source × clip pair from its per-frame readings, the
means, and the worst pair of every measure, as JSON and as a Markdown table. Pure functions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Each summary column, and which way is better: the worst pair is the lowest (+1) or highest (-1).
COLUMNS: dict[str, tuple[str, int]] = {
    "dlib_closer": ("frames closer to the source than to the input, dlib", +1),
    "ours_closer": ("frames closer to the source than to the input, ours", +1),
    "dlib_top1": ("top-1 among the gallery is the source, dlib", +1),
    "ours_top1": ("top-1 among the gallery is the source, ours", +1),
    "dlib_target_top1": ("top-1 is the person replaced, dlib", -1),
    "dlib_to_source": ("dlib distance to the source's other photos (< 0.6: same person)", -1),
    "ours_cosine": ("our cosine to the source's other photos", +1),
    "sharpness": ("sharpness of the face, output / input (median)", +1),
    "flicker": ("still-head flicker, output / input", -1),
    "cast": ("skin chroma cast, ΔE (median)", -1),
    "blotch_p95": ("skin blotches: the worst 5 % of skin patches off the face's overall change, ΔE L*a*b* (median)", -1),
    "blotch_share": ("share of skin patches off the face's overall change by > 6 ΔE", -1),
}


@dataclass
class PairReadings:
    """Everything read on one source worn over one clip, frame by frame."""

    source: str
    clip: str
    frames: int = 0
    usable: int = 0  # frames with the face fully swapped (no fade, no cover)
    sharpness: list[float] = field(default_factory=list)
    flicker: float | None = None
    flicker_grey: tuple[float, float] | None = None  # mean change on still pairs, (output, input), grey levels
    still_pairs: int = 0
    cast: list[float] = field(default_factory=list)
    blotch_p95: list[float] = field(default_factory=list)
    blotch_share: list[float] = field(default_factory=list)
    # per judged frame, per judge ("ours", "dlib"): top-1 is the source / the target; closer; distance
    top1: dict[str, list[bool]] = field(default_factory=dict)
    target_top1: dict[str, list[bool]] = field(default_factory=dict)
    closer: dict[str, list[bool]] = field(default_factory=dict)
    to_source: dict[str, list[float]] = field(default_factory=dict)

    def judged(self, judge: str, top1: bool, target_top1: bool, closer: bool, to_source: float) -> None:
        self.top1.setdefault(judge, []).append(top1)
        self.target_top1.setdefault(judge, []).append(target_top1)
        self.closer.setdefault(judge, []).append(closer)
        self.to_source.setdefault(judge, []).append(to_source)


def _mean(values: list[bool] | list[float]) -> float | None:
    return round(float(np.mean(values)), 3) if values else None


def _median(values: list[float]) -> float | None:
    return round(float(np.median(values)), 3) if values else None


def pair_row(readings: PairReadings) -> dict[str, Any]:
    """One pair's summary: every COLUMNS key (None where nothing could be read) and its counts."""
    ours_distance = readings.to_source.get("ours", [])
    row: dict[str, Any] = {
        "source": readings.source,
        "clip": readings.clip,
        "frames": readings.frames,
        "usable_frames": readings.usable,
        "judged_frames": len(readings.closer.get("ours", readings.closer.get("dlib", []))),
        "still_pairs": readings.still_pairs,
        "dlib_closer": _mean(readings.closer.get("dlib", [])),
        "ours_closer": _mean(readings.closer.get("ours", [])),
        "dlib_top1": _mean(readings.top1.get("dlib", [])),
        "ours_top1": _mean(readings.top1.get("ours", [])),
        "dlib_target_top1": _mean(readings.target_top1.get("dlib", [])),
        "dlib_to_source": _mean(readings.to_source.get("dlib", [])),
        # stored as 1 − cosine (a distance, like dlib's); shown as the cosine
        "ours_cosine": round(1.0 - float(np.mean(ours_distance)), 3) if ours_distance else None,
        "sharpness": _median(readings.sharpness),
        "flicker": None if readings.flicker is None else round(readings.flicker, 3),
        # the ratio's two sides: a near-still camera (repeated frames) makes a small shimmer a large ratio
        "flicker_output_grey": None if readings.flicker_grey is None else round(readings.flicker_grey[0], 3),
        "flicker_input_grey": None if readings.flicker_grey is None else round(readings.flicker_grey[1], 3),
        "cast": _median(readings.cast),
        "blotch_p95": _median(readings.blotch_p95),
        "blotch_share": _mean(readings.blotch_share),
    }
    return row


def worst_pairs(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """For every column, the pair that reads worst (and its value)."""
    worst = {}
    for key, (_, better) in COLUMNS.items():
        rated = [row for row in rows if row.get(key) is not None]
        if rated:
            row = min(rated, key=lambda r: better * r[key])
            worst[key] = {"source": row["source"], "clip": row["clip"], "value": row[key]}
    return worst


def means(rows: list[dict[str, Any]], by: str | None = None) -> dict[str, dict[str, float | None]]:
    """Each column's mean over all pairs (key "all"), or over the pairs of each ``by`` value
    ("source" or "clip")."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault("all" if by is None else row[by], []).append(row)
    return {name: {key: _mean([r[key] for r in members if r.get(key) is not None]) for key in COLUMNS} for name, members in groups.items()}


def failing_share(rows: list[dict[str, Any]], key: str, below: float) -> float | None:
    """Share of pairs whose ``key`` is below ``below`` (e.g. pairs under 90 % of frames closer)."""
    rated = [row[key] for row in rows if row.get(key) is not None]
    return round(float(np.mean(np.array(rated) < below)), 3) if rated else None


def markdown_table(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> str:
    """Pairs as a Markdown table, the mean and the worst value of each column below them."""
    head = "| source × clip | " + " | ".join(keys) + " |"
    lines = [head, "|---|" + "---:|" * len(keys)]

    def cell(value: object) -> str:
        return "–" if value is None else f"{value}"

    for row in rows:
        lines.append(f"| {row['source']} × {row['clip']} | " + " | ".join(cell(row.get(k)) for k in keys) + " |")
    overall, worst = means(rows)["all"], worst_pairs(rows)
    lines.append("| **mean** | " + " | ".join(cell(overall.get(k)) for k in keys) + " |")
    lines.append("| **worst pair** | " + " | ".join(cell(worst[k]["value"]) if k in worst else "–" for k in keys) + " |")
    return "\n".join(lines)
