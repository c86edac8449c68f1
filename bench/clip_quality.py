"""What a viewer sees of a generator on real clips at 1080p: each talking-head clip fitted into a
1920×1080 frame (as bench/make_clip.py does), run through the live pipeline offline wearing a
held-out LFW person (one photo as the source, another photo of them as the reference), and per clip:
- identity: our encoder's cosine of the swapped face to the reference photo and to the input face,
  and dlib's independent judge (when installed: pip install -e '.[judge]'): its distance to the
  reference and the share of frames it calls the same person (distance < 0.6);
- sharpness: the variance of the Laplacian inside the face (landmarks' hull, shrunk), swap / input;
- flicker: on still stretches, the mean frame-to-frame change inside the face, swap / input;
- lattice: in the generator's own crops, the spectrum's energy at the highest frequencies along
  either axis (where an upsampling lattice sits) as a share of the high band, swap / input crop;
and a grid: input | swap | the reference photo, the face at full resolution.
    python3 bench/clip_quality.py OUTDIR [--generator G] [--clips NAME ...] [--frames 60] [--detail D] [--steady W] [--light side|bright]
(--detail and --steady default to the pipeline's; --light relights the clips: strong side light or overexposure.)"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from realtime import app  # noqa: E402
from realtime.config import build_config  # noqa: E402
from realtime.eval.face_conditions import clipped_share, side_light_stops  # noqa: E402
from realtime.eval.image_measures import face_region, lattice_share, sharpness  # noqa: E402
from realtime.eval.relight import LIGHTS, relight  # noqa: E402
from realtime.photo import detect_faces_in_image, embed_face, load_identity_encoder, read_image  # noqa: E402
from realtime.pipeline.stage import SinkStage  # noqa: E402
from realtime.vision.align import crop_from_frame_matrix, warp_crop  # noqa: E402
from realtime.vision.landmarks import five_points  # noqa: E402

CLIPS = ("liveportrait_d0", "liveportrait_d3", "liveportrait_d10", "liveportrait_d14", "liveportrait_d19", "dfl_Obama_speaking")
STILL_PX = 1.0  # a frame is "still" when the face's landmarks moved less than this (mean, 1080p pixels)


def fitted_clip(source: Path, out: Path, frames: int, light: str = "none") -> Path:
    """The first ``frames`` frames of ``source`` fitted into 1920×1080 as bench/make_clip.py fits
    them, relit (``relight``), nearly lossless (the measures compare the swap with this input)."""
    from make_clip import fit_frame

    with av.open(str(source)) as container, av.open(str(out), "w") as writer:
        stream = container.streams.video[0]
        encoder = writer.add_stream("libx264", rate=stream.average_rate or 30, options={"crf": "10"})
        encoder.width, encoder.height, encoder.pix_fmt = 1920, 1080, "yuv420p"
        for index, frame in enumerate(container.decode(stream)):
            if index >= frames:
                break
            fitted = fit_frame(frame, 1920, 1080)
            if light != "none":
                fitted = av.VideoFrame.from_ndarray(relight(fitted.to_ndarray(format="rgb24"), light), format="rgb24").reformat(format="yuv420p")
            writer.mux(encoder.encode(fitted))
        writer.mux(encoder.encode())
    return out


class Keep(SinkStage):
    """Keeps every output frame with its first face's landmarks and generated crop."""

    name = "keep"

    def __init__(self) -> None:
        self.frames: list[tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]] = []

    def write(self, bundle) -> None:  # type: ignore[no-untyped-def]
        face = bundle.faces[0] if bundle.faces else None
        crop = face.swapped.host().crop if face is not None and face.swapped is not None else None
        matrix = face.crop_from_frame if face is not None else None
        self.frames.append((bundle.frame.copy(), face.landmarks.copy() if face is not None else None, crop, matrix))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--generator", type=Path, default=ROOT / "models" / "aei-net-v2.safetensors")
    parser.add_argument("--identity-encoder", type=Path, default=ROOT / "models" / "identity-encoder-v1.safetensors")
    parser.add_argument("--videos", type=Path, default=ROOT.parent / "shared" / "data" / "videos")
    parser.add_argument("--lfw", type=Path, default=ROOT.parent / "shared" / "data" / "faces" / "lfw-deepfunneled")
    parser.add_argument("--clips", nargs="+", default=list(CLIPS))
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--backends", nargs="+", default=["cpu"])
    parser.add_argument("--detail", type=float, help="the blend's --detail (the camera's fine texture restored over the swap; default: the pipeline's)")
    parser.add_argument("--steady", type=float, help="the swap's --steady (a still face's crop averaged with its previous one; default: the pipeline's)")
    parser.add_argument("--light", choices=LIGHTS, default="none", help="a synthetic light on the clips: side (a lamp to one side, strong) or bright (overexposed)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    encoder = load_identity_encoder(args.identity_encoder)
    try:
        from realtime.eval.swap_measures import DlibJudge

        judge: DlibJudge | None = DlibJudge()
    except ImportError as exc:
        judge = None
        print(f"no dlib judge: {exc}")
    # held-out LFW people (two or more photos; v1 trained only on the single-photo ones): a source photo and a reference photo each
    people = sorted(p for p in args.lfw.iterdir() if len(list(p.glob("*.jpg"))) >= 2)
    rng = np.random.default_rng(7)
    chosen = [people[i] for i in rng.choice(len(people), size=len(args.clips), replace=False)]
    results, rows = [], []
    detail = steady = None
    started = time.monotonic()
    work = Path(tempfile.mkdtemp())
    for index, (name, person) in enumerate(zip(args.clips, chosen, strict=True), 1):
        photos = sorted(person.glob("*.jpg"))
        source, reference = photos[0], photos[1]
        reference_image = read_image(reference)
        found = detect_faces_in_image(reference_image, build_config().detect)
        if not found:
            print(f"{name}: no face in {reference.name}, skipped")
            continue
        reference_embedding = embed_face(reference_image, found[0].landmarks, encoder)
        reference_dlib = judge.describe(reference_image, found[0].landmarks) if judge else None
        dlib_distances: list[float] = []
        dlib_baseline: list[float] = []  # the input face (another person) to the reference: what "not the source" reads
        clip = fitted_clip(args.videos / f"{name}.mp4", work / f"{name}.mp4", args.frames, args.light)
        keep = Keep()
        config = build_config(overrides={
            "input": str(clip), "generator": str(args.generator), "identity_encoder": str(args.identity_encoder), "source": str(source),
            "backends": tuple(args.backends), "detect_mode": "sync", "face_safety": "reveal", "quiet": True, "colour": "smoothed", **({} if args.detail is None else {"detail": args.detail}),
            **({} if args.steady is None else {"steady": args.steady}),
        })
        detail, steady = config.blend.detail, config.swap.steady
        app.run(config, extra_sinks=[lambda _info, keep=keep: keep])
        with av.open(str(clip)) as container:
            inputs = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        sharp, identity_ref, identity_in, lattice_out, lattice_in, flicker_out, flicker_in = [], [], [], [], [], [], []
        light_stops, blown = [], []  # the input face's light, as the failure-mode bench reads it
        previous = None
        for t, (output, landmarks, crop, matrix) in enumerate(keep.frames):
            if landmarks is None or crop is None or t >= len(inputs):
                previous = None
                continue
            mask = face_region(output.shape, landmarks)
            sharp.append(sharpness(output, mask) / max(sharpness(inputs[t], mask), 1e-6))
            if t % 10 == 0:
                light_stops.append(abs(side_light_stops(inputs[t], landmarks)))
                blown.append(clipped_share(inputs[t], landmarks))
                swapped_embedding = embed_face(output, landmarks, encoder)
                identity_ref.append(float(torch.nn.functional.cosine_similarity(swapped_embedding, reference_embedding, dim=0)))
                identity_in.append(float(torch.nn.functional.cosine_similarity(swapped_embedding, embed_face(inputs[t], landmarks, encoder), dim=0)))
                if judge is not None and reference_dlib is not None:
                    dlib_distances.append(float(np.linalg.norm(judge.describe(output, landmarks) - reference_dlib)))
                    dlib_baseline.append(float(np.linalg.norm(judge.describe(inputs[t], landmarks) - reference_dlib)))
            lattice_out.append(lattice_share(crop))
            lattice_in.append(lattice_share(warp_crop(inputs[t], matrix, crop.shape[0])))
            if previous is not None and np.abs(landmarks - previous[0]).mean() < STILL_PX:
                both = mask & previous[1]
                flicker_out.append(float(np.abs(output.astype(np.int16) - keep.frames[t - 1][0].astype(np.int16))[both].mean()))
                flicker_in.append(float(np.abs(inputs[t].astype(np.int16) - inputs[t - 1].astype(np.int16))[both].mean()))
            previous = (landmarks, mask)
        entry = {
            "clip": name, "source": f"{person.name}/{source.name}", "reference": reference.name, "frames": len(keep.frames),
            "identity_to_reference": round(float(np.mean(identity_ref)), 3) if identity_ref else None,
            "identity_to_input": round(float(np.mean(identity_in)), 3) if identity_in else None,
            "dlib_distance_to_reference": round(float(np.mean(dlib_distances)), 3) if dlib_distances else None,
            "dlib_same_person_share": round(float(np.mean(np.array(dlib_distances) < 0.6)), 3) if dlib_distances else None,
            "dlib_input_to_reference": round(float(np.mean(dlib_baseline)), 3) if dlib_baseline else None,
            "sharpness_vs_input": round(float(np.median(sharp)), 3) if sharp else None,
            "flicker_vs_input": round(float(np.mean(flicker_out) / max(np.mean(flicker_in), 1e-6)), 3) if flicker_in else None,
            "still_frames": len(flicker_in),
            "input_side_light_stops": round(float(np.median(light_stops)), 2) if light_stops else None,
            "input_blown_share": round(float(np.median(blown)), 3) if blown else None,
            "lattice_vs_input": round(float(np.mean(lattice_out) / max(np.mean(lattice_in), 1e-9)), 3) if lattice_out else None,
        }
        results.append(entry)
        middle = next((t for t in range(len(keep.frames) // 2, len(keep.frames)) if keep.frames[t][1] is not None), None)
        if middle is not None:
            landmarks = keep.frames[middle][1]
            left, top = landmarks.min(axis=0) - 0.05 * np.ptp(landmarks, axis=0)
            right, bottom = landmarks.max(axis=0) + 0.05 * np.ptp(landmarks, axis=0)
            box = (slice(max(int(top), 0), int(bottom)), slice(max(int(left), 0), int(right)))
            tiles = [inputs[middle][box], keep.frames[middle][0][box]]  # the face at its size in the 1080p frame: no scaling
            height = tiles[0].shape[0]
            reference_tile = warp_crop(reference_image, crop_from_frame_matrix(five_points(found[0].landmarks), height, "arcface"), height)
            label = np.full((28, sum(t.shape[1] for t in tiles) + height, 3), 255, np.uint8)
            cv2.putText(label, f"{name}: input (1080p, full resolution) | swap ({args.generator.stem}) | another photo of the source (scaled)", (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
            rows.append(np.vstack([label, np.hstack([*tiles, reference_tile])]))
            (args.out / "faces").mkdir(exist_ok=True)  # the same tiles alone, for bench/compare_grid.py
            for kind, tile in (("input", tiles[0]), ("swap", tiles[1]), ("reference", reference_tile)):
                cv2.imwrite(str(args.out / "faces" / f"{name}-{kind}.png"), cv2.cvtColor(tile, cv2.COLOR_RGB2BGR))
        eta = (time.monotonic() - started) / index * (len(args.clips) - index)
        print(f"[{index}/{len(args.clips)}] {json.dumps(entry)}; ETA {eta:.0f} s", flush=True)
    keys = ("identity_to_reference", "identity_to_input", "dlib_distance_to_reference", "dlib_same_person_share", "dlib_input_to_reference", "sharpness_vs_input", "flicker_vs_input", "lattice_vs_input")
    summary = {k: round(float(np.mean(values)), 3) if (values := [r[k] for r in results if r[k] is not None]) else None for k in keys}
    report = {"generator": args.generator.name, "light": args.light, "detail": detail, "steady": steady, "backends": args.backends, "frames_per_clip": args.frames, "clips": results, "mean": summary}
    (args.out / "clip-quality.json").write_text(json.dumps(report, indent=2) + "\n")
    if rows:
        width = max(r.shape[1] for r in rows)
        grid = np.vstack([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
        cv2.imwrite(str(args.out / "clip-quality-grid.jpg"), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 72])
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
