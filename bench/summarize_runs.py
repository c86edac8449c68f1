"""One table row per `realtime bench --json` report: throughput, latency, drops, failed frames and
what the face-safety policy did. Usage: python3 bench/summarize_runs.py REPORT.json ..."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def row(path: Path) -> str:
    report = json.loads(path.read_text())
    latency, frames = report["latency_ms"], report["frames"]
    blend = report.get("stages_info", {}).get("blend", {})
    swap = report.get("stages_info", {}).get("swap", {})
    track = report.get("stages_info", {}).get("track", {})
    dropped = sum(frames["dropped"].values())
    gpu = report.get("resources", {}).get("gpu_peak_reserved_mb")
    return (
        f"| {path.stem} | {frames['done']} | {report['throughput_fps']} | {latency.get('p50')} / {latency.get('p99')} / {latency.get('max')} "
        f"| {dropped} | {frames['failed_frames']} {dict(frames['failures']) or ''} | {swap.get('batches')} | {swap.get('faces_swapped')} "
        f"| {swap.get('faces_over_max_faces')} | {blend.get('face_safety')} {blend.get('faces_covered')} | {track.get('scene_cuts')} | {gpu} |"
    )


def main() -> None:
    print("| run | frames | fps | latency p50 / p99 / max ms | dropped | failed frames | batches | faces swapped | over --max-faces | face safety (covered) | cuts | GPU peak MB |")
    print("|---|---:|---:|---|---:|---|---|---:|---:|---|---:|---:|")
    for name in sys.argv[1:]:
        try:
            print(row(Path(name)))
        except (OSError, KeyError, ValueError) as exc:
            print(f"| {Path(name).stem} | unreadable ({exc}) |")


if __name__ == "__main__":
    main()
