"""Where the GPU blend's time goes: torch.profiler over steady-state frames (1080p, one face).

    python3 bench/profile_blend.py [--colour off|smoothed]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realtime.bundle import Detection, FrameBundle  # noqa: E402
from realtime.config import BlendConfig, TrackConfig  # noqa: E402
from realtime.stages.blend import BlendControls, BlendStage  # noqa: E402
from realtime.testing import make_face_landmarks  # noqa: E402
from realtime.vision.align import warp_crop  # noqa: E402
from realtime.vision.tracking import FaceTracker  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--colour", default="off")
    args = parser.parse_args()
    frame = np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    faces = FaceTracker(TrackConfig(birth_hits=1, crop_size=256, fade_s=0.0)).step([Detection(make_face_landmarks((960, 540), 180))], 0.0, 0.0)
    faces[0].swapped_crop = warp_crop(frame, faces[0].crop_from_frame, 256)
    stage = BlendStage(BlendControls(BlendConfig(colour=args.colour)), device="cuda")
    stage.setup()

    def step(i: int) -> None:
        bundle = FrameBundle(i, 0, frame, i / 60)
        bundle.faces = faces
        stage.process(bundle)

    for i in range(30):
        step(i)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(100):
        step(i)
    print(f"colour {args.colour}: {(time.perf_counter() - t0) * 10:.3f} ms per frame")
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]) as prof:
        for i in range(50):
            step(i)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18, max_name_column_width=60))


if __name__ == "__main__":
    main()
