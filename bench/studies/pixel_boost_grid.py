"""Study (closed; BENCHMARKS-HISTORY.md §14): pixel boost on real clips: the shipped 128-px AEI-Net at k = 1, 2, 4 on one frame of each
talking-head clip, shown at 1080p. Writes a grid (input | k=1 | k=2 | k=4, the face region at full
resolution) and the figures: the face's sharpness (variance of the Laplacian inside the face, as a
share of the input's; realtime.eval.image_measures) and the identity kept (cosine to the source, by our encoder).
    python3 bench/studies/pixel_boost_grid.py OUT.png [--clips DIR] [--json OUT.json]"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from realtime.bundle import Detection  # noqa: E402
from realtime.config import build_config  # noqa: E402
from realtime.eval.image_measures import face_region, sharpness  # noqa: E402
from realtime.io.demo import demo_source_path  # noqa: E402
from realtime.models.checkpoint import load_checkpoint  # noqa: E402
from realtime.photo import detect_faces_in_image, embed_face, read_image  # noqa: E402
from realtime.still import StillSwapper  # noqa: E402

CLIPS = ("liveportrait_d0", "liveportrait_d3", "liveportrait_d10", "liveportrait_d14", "dfl_Obama_speaking", "sadtalker_WDA_KatieHill_000")
BOOSTS = (1, 2, 4)


def middle_frame_1080p(path: Path) -> np.ndarray:
    capture = cv2.VideoCapture(str(path))
    capture.set(cv2.CAP_PROP_POS_FRAMES, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) // 2)
    ok, bgr = capture.read()
    capture.release()
    if not ok:
        raise SystemExit(f"cannot read {path}")
    scale = 1080 / bgr.shape[0]
    frame = cv2.resize(bgr, (round(bgr.shape[1] * scale), 1080), interpolation=cv2.INTER_CUBIC)
    canvas = np.zeros((1080, 1920, 3), np.uint8)
    x0 = (1920 - frame.shape[1]) // 2
    canvas[:, x0 : x0 + frame.shape[1]] = frame[:, : min(frame.shape[1], 1920)]
    return cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB)


def face_box(landmarks: np.ndarray, shrink: float = 0.15) -> tuple[int, int, int, int]:
    left, top = landmarks.min(axis=0)
    right, bottom = landmarks.max(axis=0)
    dx, dy = (right - left) * shrink, (bottom - top) * shrink
    return int(left + dx), int(top + dy), int(right - dx), int(bottom - dy)


def lattice(crop: np.ndarray, k: int) -> float:
    """How strongly neighbouring pixels of different polyphase sub-images disagree: in each tile of
    the generated crop, the spread (std, grey levels) of the k² sub-images' means. Independent
    sub-images that disagree leave a k-periodic pattern; a smooth image scores near 0."""
    if k == 1:
        k = 2  # the same measure at period 2, for the unboosted baseline
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
    tile = 8 * k
    size = (grey.shape[0] // tile) * tile
    tiles = grey[:size, :size].reshape(size // tile, 8, k, size // tile, 8, k)
    phase_means = tiles.mean(axis=(1, 4))  # (rows, k, cols, k)
    return float(phase_means.std(axis=(1, 3)).mean())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--clips", type=Path, default=ROOT.parent / "shared" / "data" / "videos")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    generator, encoder_path = ROOT / "models" / "aei-net-v2.safetensors", ROOT / "models" / "identity-encoder-v1.safetensors"
    encoder, _ = load_checkpoint(encoder_path, expect="identity_encoder")
    source = read_image(demo_source_path())
    base = build_config(overrides={"generator": str(generator), "identity_encoder": str(encoder_path), "source": "demo", "colour": "per_frame", "backends": ("cpu",)})
    source_landmarks = detect_faces_in_image(source, base.detect)[0].landmarks
    source_identity = embed_face(source, source_landmarks, encoder)
    swappers = {k: StillSwapper(build_config(overrides={**{"generator": str(generator), "identity_encoder": str(encoder_path), "source": "demo", "colour": "per_frame", "backends": ("cpu",)}, "pixel_boost": k})) for k in BOOSTS}
    rows, figures = [], []
    started = time.monotonic()
    for index, name in enumerate(CLIPS, 1):
        frame = middle_frame_1080p(args.clips / f"{name}.mp4")
        found = detect_faces_in_image(frame, base.detect)
        if not found:
            print(f"{name}: no face, skipped")
            continue
        landmarks = max(found, key=lambda d: np.ptp(d.landmarks[:, 0])).landmarks
        box = face_box(landmarks)
        region = face_region(frame.shape, landmarks)
        entry: dict[str, object] = {"clip": name, "face_px": box[2] - box[0], "input_sharpness": round(sharpness(frame, region), 3)}
        tiles = [frame]
        for k, swapper in swappers.items():
            t0 = time.perf_counter()
            bundle = swapper.swap_faces(frame, [Detection(landmarks)])
            swapped = bundle.frame
            seconds = time.perf_counter() - t0
            generated = bundle.faces[0].swapped.host().crop
            identity = float(torch.nn.functional.cosine_similarity(embed_face(swapped, landmarks, encoder), source_identity, dim=0))
            entry[f"k{k}"] = {"sharpness_share": round(sharpness(swapped, region) / max(sharpness(frame, region), 1e-6), 3), "identity_to_source": round(identity, 3), "lattice": round(lattice(generated, k), 3), "cpu_s": round(seconds, 2)}
            tiles.append(swapped)
        figures.append(entry)
        left, top, right, bottom = face_box(landmarks, shrink=-0.1)
        top, left = max(top, 0), max(left, 0)
        crops = [cv2.resize(t[top:bottom, left:right], (512, 512), interpolation=cv2.INTER_AREA) for t in tiles]
        rows.append(np.hstack(crops))
        eta = (time.monotonic() - started) / index * (len(CLIPS) - index)
        print(f"[{index}/{len(CLIPS)}] {name}: " + ", ".join(f"k={k} sharpness {entry[f'k{k}']['sharpness_share']:.2f} lattice {entry[f'k{k}']['lattice']:.2f} identity {entry[f'k{k}']['identity_to_source']:.2f}" for k in BOOSTS) + f"; ETA {eta:.0f} s")  # type: ignore[index]
    for swapper in swappers.values():
        swapper.close()
    grid = np.vstack(rows[:4])  # four clips: enough to judge, small enough for the repository
    header = np.full((40, grid.shape[1], 3), 255, np.uint8)
    for i, label in enumerate(["input (1080p)", "swap, k=1", "pixel boost k=2", "pixel boost k=4"]):
        cv2.putText(header, label, (i * 512 + 10, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2)
    cv2.imwrite(str(args.out), cv2.cvtColor(np.vstack([header, grid]), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
    summary = {f"k{k}": {"sharpness_share_mean": round(float(np.mean([f[f"k{k}"]["sharpness_share"] for f in figures])), 3), "identity_mean": round(float(np.mean([f[f"k{k}"]["identity_to_source"] for f in figures])), 3), "lattice_mean": round(float(np.mean([f[f"k{k}"]["lattice"] for f in figures])), 3)} for k in BOOSTS}  # type: ignore[index]
    print(json.dumps(summary))
    if args.json:
        args.json.write_text(json.dumps({"clips": figures, "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
