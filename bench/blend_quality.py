"""Blend quality on real clips: flicker and seam (docs/BENCHMARKS-HISTORY.md, section 6).

    python3 bench/blend_quality.py OUTDIR [--videos ../shared/data/videos] [--clips a.mp4 b.mp4]

For each clip: detect and track (sync, every frame), then blend with two stand-in generators
whose output is known: 'identity' returns its own input crop (what the blend alone adds), and
'wobbly' returns it with a random ±8% colour gain per frame (an unsteady generator), under each
colour mode. Flicker: mean absolute frame-to-frame change inside the face on still stretches,
output vs input. Seam: mean gradient magnitude on the mask's edge band, output vs input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realtime.bundle import FrameBundle, HostSwapped  # noqa: E402
from realtime.config import BlendConfig, CaptureConfig, DetectConfig, TrackConfig  # noqa: E402
from realtime.io.sources import open_source  # noqa: E402
from realtime.live import LiveSettings  # noqa: E402
from realtime.stages.blend import BlendStage  # noqa: E402
from realtime.stages.detect import DetectStage  # noqa: E402
from realtime.stages.track import TrackStage  # noqa: E402
from realtime.vision import metrics  # noqa: E402
from realtime.vision.align import apply_affine, warp_crop  # noqa: E402
from realtime.vision.masks import face_mask  # noqa: E402

CLIPS = ("liveportrait_d19.mp4", "liveportrait_d18.mp4", "dfl_Obama_speaking.mp4", "liveportrait_d14.mp4")


def gradient(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))


def measure(clip: Path, max_frames: int = 250) -> dict[str, object]:
    detect = DetectStage(DetectConfig(), asynchronous=False)
    track = TrackStage(TrackConfig(birth_hits=1, fade_s=0.0))
    detect.setup()
    source = open_source(CaptureConfig(input=str(clip)))
    frames, tracked = [], []
    try:
        for index, (frame, t) in enumerate(source.frames()):
            if index >= max_frames:
                break
            bundle = track.process(detect.process(FrameBundle(index, 0, frame, t)))
            frames.append(frame)
            tracked.append(bundle.faces[0] if bundle.faces else None)
    finally:
        source.close()
        detect.teardown()
    raw = np.array([f.landmarks if f is not None else np.full((478, 2), np.nan) for f in tracked])
    still = metrics.still_mask(raw, threshold=0.006)
    rng = np.random.default_rng(0)
    gains = rng.uniform(0.92, 1.08, (len(frames), 3))
    results: dict[str, object] = {"clip": clip.name, "frames": len(frames), "still_frames": int(still.sum())}
    face_regions = []
    for frame, face in zip(frames, tracked, strict=False):
        if face is None:
            face_regions.append(None)
            continue
        mask = face_mask(apply_affine(face.crop_from_frame, face.landmarks), face.crop_size)
        face_regions.append(cv2.warpAffine(mask, face.frame_from_crop, frame.shape[1::-1]))

    def flicker(images: list[np.ndarray]) -> float:
        values = []
        for i in range(1, len(images)):
            region = face_regions[i]
            if still[i] and still[i - 1] and region is not None:
                inside = region > 0.5
                values.append(np.abs(images[i].astype(np.float32) - images[i - 1].astype(np.float32))[inside].mean())
        return float(np.mean(values)) if values else float("nan")

    def seam(images: list[np.ndarray]) -> float:
        values = []
        for image, region in zip(images, face_regions, strict=False):
            if region is not None:
                band = (region > 0.3) & (region < 0.7)
                if band.any():
                    values.append(gradient(image)[band].mean())
        return float(np.mean(values))

    results["input"] = {"flicker": flicker(frames), "seam": seam(frames)}
    for generator in ("identity", "wobbly"):
        for colour in ("off", "per_frame", "smoothed"):
            if generator == "identity" and colour == "smoothed":
                continue
            stage = BlendStage(LiveSettings(BlendConfig(colour=colour)))
            outputs = []
            for index, (frame, face) in enumerate(zip(frames, tracked, strict=False)):
                bundle = FrameBundle(index, 0, frame, index / 30)
                if face is not None:
                    crop = warp_crop(frame, face.crop_from_frame, face.crop_size)
                    if generator == "wobbly":
                        crop = np.clip(crop * gains[index], 0, 255).astype(np.uint8)
                    face.swapped = HostSwapped(crop)
                    bundle.faces = [face]
                outputs.append(stage.process(bundle).frame)
            results[f"{generator}/{colour}"] = {"flicker": flicker(outputs), "seam": seam(outputs)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--videos", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "videos")
    parser.add_argument("--clips", nargs="+", default=list(CLIPS))
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, name in enumerate(args.clips):
        row = measure(args.videos / name)
        rows.append(row)
        print(f"[{index + 1}/{len(args.clips)}] {json.dumps(row)}", flush=True)
    (args.outdir / "blend_quality.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
