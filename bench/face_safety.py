"""Does the real face reach the viewer at a cut, past --max-faces or at a flash? Real footage, read.

Builds three clips from ../shared talking heads (hard cuts between two people framed left and
right; two people side by side under --max-faces 1; a three-frame flash), runs them through the
product's own detect/track/swap/blend stages on the CPU (the shipped AEI-Net, --face-safety hold,
the default --others), with the landmarker's results delivered in the frame (sync) and one frame
late (as the asynchronous landmarker delivers them live), and reads every true face of every frame
(located on the clips alone) as real, partly real, covered or swapped. Writes summary.json and, for
the live lag, a grid of every cut and flash frame (and the two after), input beside output, at full
face size ('same': the share of the face's middle that came through unchanged; 'r': how its fine
detail correlates with the input's).

    .venv/bin/python bench/face_safety.py --shared ../shared --out docs/results/2026-12-07-face-safety
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from realtime.eval.safety_footage import (  # noqa: E402
    clip_faces,
    cut_montage,
    face_grid,
    faces_of,
    flash_burst,
    read_clip,
    read_face,
    run_frames,
    side_by_side,
)

SIZE = 512  # the clips' own size: nothing is rescaled but the framing canvas


def framed(frames: list[np.ndarray], right: bool) -> list[np.ndarray]:
    """A 2:1 film frame with the person on the left or the right, the other half a blurred copy."""
    out = []
    for frame in frames:
        empty = cv2.GaussianBlur(cv2.resize(frame, (16, 16), interpolation=cv2.INTER_AREA), (0, 0), 3)
        empty = cv2.resize(empty, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_LINEAR)
        out.append(np.ascontiguousarray(np.concatenate([empty, frame] if right else [frame, empty], axis=1)))
    return out


def shift(landmarks: list[np.ndarray], dx: float) -> list[np.ndarray]:
    return [points + np.array([dx, 0.0]) for points in landmarks]


def build_stages(lag: int, models: Path, landmarker: Path):  # type: ignore[no-untyped-def]
    from realtime.app import Plan, face_stages
    from realtime.config import build_config

    overrides = {
        "generator": str(models / "aei-net-v2.safetensors"), "identity_encoder": str(models / "identity-encoder-v1.safetensors"),
        "source": "demo", "blend_device": "cpu", "backends": ("cpu",), "face_safety": "hold", "detect_mode": "sync",
        "landmarker_model": str(landmarker), "max_faces": 1,
    }
    config = build_config(overrides=overrides)
    stages = face_stages(config, Plan(paced=False, policy="block", sink_policies=("block",)))
    for stage in stages:
        stage.setup()
    detect, rest = stages[0], stages[1:]

    def detect_frame(frame: np.ndarray, t: float):  # type: ignore[no-untyped-def]
        from realtime.bundle import FrameBundle

        return detect.process(FrameBundle(0, 0, frame, t)).detections or []

    def through(bundle):  # type: ignore[no-untyped-def]
        for stage in rest:
            bundle = stage.process(bundle)
        return bundle

    return detect_frame, through, stages


def scenario_clips(shared: Path, landmarker: Path) -> dict[str, tuple[list[np.ndarray], list[list[np.ndarray]], list[int]]]:
    """name → (frames, true faces per frame, frames to show in the grid)."""
    videos = shared / "data" / "videos"
    a, fps = read_clip(videos / "liveportrait_d3.mp4", 72, SIZE)
    b, _ = read_clip(videos / "liveportrait_d10.mp4", 72, SIZE)
    truth_a, truth_b = clip_faces(a, landmarker), clip_faces(b, landmarker)
    montage, which, index = cut_montage(framed(a, right=False), framed(b, right=True), shot=12)
    montage_truth = [truth_a[i] if w == 0 else shift(truth_b[i], SIZE) for w, i in zip(which, index, strict=True)]
    cuts = [i for i in range(1, len(which)) if which[i] != which[i - 1]]
    pair = side_by_side(a[:40], b[:40])
    pair_truth = [truth_a[i] + shift(truth_b[i], SIZE) for i in range(len(pair))]
    flash = flash_burst(a[:40], 20, 3)
    return {
        "cuts": (montage, montage_truth, cuts),
        "two_people_max_faces_1": (pair, pair_truth, [0, 1, 2, 20]),
        "flash": (flash, truth_a[:40], [20, 21, 22, 23]),
    }, fps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    landmarker = args.shared / "models" / "face_landmarker.task"
    clips, fps = scenario_clips(args.shared, landmarker)
    summary: dict[str, object] = {"others_supported": "others" in inspect.signature(__import__("realtime.stages.blend", fromlist=["BlendStage"]).BlendStage).parameters}
    for lag in (0, 1):
        for name, (frames, truth, shown) in clips.items():
            started = time.perf_counter()
            detect, through, stages = build_stages(lag, args.models, landmarker)
            results = run_frames(frames, fps, detect, through, detect_lag=lag)
            verdicts: Counter[str] = Counter()
            real_frames, grid = [], []
            for result, boxes in zip(results, truth, strict=True):
                for box in faces_of(boxes):
                    swapped = any(abs(box[0] - s[0]) < 0.3 * (box[2] - box[0]) for s in result.swapped_boxes)
                    reading = read_face(frames[result.index], result.output, box, swapped=swapped)
                    verdicts[reading.verdict] += 1
                    if reading.verdict in ("real", "partly real"):
                        real_frames.append(result.index)
                    if result.index in shown or any(result.index == s + k for s in shown for k in (1, 2)):
                        label = f"{result.index}{' cut' if result.scene_cut else ''}{' blind' if result.blind else ''}: {reading.verdict} (same {reading.unchanged_share:.2f}, r {reading.detail_correlation:.2f})"
                        grid.append((label, frames[result.index], result.output, box))
            report = {k: v for s in stages for k, v in s.describe().items() if k in ("scene_cuts", "frames_covered_whole_after_cuts", "faces_covered", "others_covered", "others_revealed", "frames_covered_whole")}
            key = f"{name}/lag{lag}"
            summary[key] = {"frames": len(frames), "faces_read": dict(verdicts), "frames_with_a_real_face": sorted(set(real_frames)), "stages": report, "seconds": round(time.perf_counter() - started, 1)}
            print(key, json.dumps(summary[key]), flush=True)
            if lag == 1:  # the live lag's grids (lag 0's readings are in the summary)
                face_grid(grid, args.out / f"{name}-lag{lag}.jpg")
            for stage in stages:
                stage.teardown()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
