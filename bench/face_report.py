"""The face, measured so that it cannot flatter: every source of bench/face_split.json worn over
every held-out clip, each clip at its native resolution (never rescaled), through the live
pipeline offline, twice: as delivered (the pipeline's defaults, or --detail/--steady) and the
generator alone (--detail 0 --steady 0). Per source × clip pair and per run:

- identity by an independent judge (dlib's ResNet descriptor) and by our encoder side by side:
  top-1 among a 100-face gallery (the sources' other photos, the clips' own people, held-out LFW
  distractors), how often the nearest is the person replaced, the share of frames closer to the
  source's other photos than to the input frame's face, the distance/cosine to those photos;
- sharpness of the face, output / input, at native resolution;
- flicker on frame pairs where the input's face changed by < 2 grey levels, output / input;
- skin colour: the overall chroma cast against the input's skin, and blotches (patches off it);
and the mean, the worst pair of every measure, the share of pairs under the issue's 90 % line,
grids of the worst pairs at native face resolution (input | delivered | generator | source) and
of every pair. Needs ../shared (clips, LFW) and the dlib judge (pip install -e '.[judge]').

    python3 bench/face_report.py OUT [--generator G] [--frames 150] [--clips NAME ...] [--sources NAME ...]
    python3 bench/face_report.py OUT --swapper reenact   # design b's warp alone (no network), eyes and mouth kept
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from realtime import app  # noqa: E402
from realtime.config import build_config  # noqa: E402
from realtime.eval.clip_measures import blotches, flicker_on_still_pairs, judge  # noqa: E402
from realtime.eval.clip_report import COLUMNS, PairReadings, failing_share, markdown_table, means, pair_row, worst_pairs  # noqa: E402
from realtime.eval.face_split import load_split, missing_data, photos_of  # noqa: E402
from realtime.eval.image_measures import face_region, sharpness  # noqa: E402
from realtime.photo import detect_faces_in_image, embed_face, load_identity_encoder, read_image  # noqa: E402
from realtime.pipeline.stage import SinkStage  # noqa: E402

JUDGE_EVERY = 10  # identity judged on every 10th frame (descriptors are slow on a CPU)
BLOTCH_EVERY = 5
FULL_ALPHA = 0.999  # a face still fading in (or out) is part input: not judged
OVERVIEW_PX = 192
TABLE_KEYS = ("dlib_closer", "dlib_top1", "dlib_target_top1", "dlib_to_source", "ours_closer", "ours_top1", "ours_cosine", "sharpness", "flicker", "cast", "blotch_p95", "blotch_share")


@dataclass
class Kept:
    output: np.ndarray
    landmarks: np.ndarray | None
    usable: bool


class Keep(SinkStage):
    """Every output frame by id, with its first face's landmarks and whether that face went out
    fully swapped (a swap, at full strength)."""

    name = "keep"

    def __init__(self) -> None:
        self.frames: dict[int, Kept] = {}

    def write(self, bundle) -> None:  # type: ignore[no-untyped-def]
        face = bundle.faces[0] if bundle.faces else None
        usable = face is not None and face.swapped is not None and face.alpha >= FULL_ALPHA and not bundle.blind
        self.frames[bundle.frame_id] = Kept(bundle.frame.copy(), None if face is None else face.landmarks.copy(), usable)


@dataclass
class Describer:
    """Both judges' descriptors of a face: ours (unit vectors, cosine) and dlib's (Euclidean)."""

    encoder: Any
    dlib: Any

    def __call__(self, image: np.ndarray, landmarks: np.ndarray) -> dict[str, np.ndarray]:
        out = {"ours": embed_face(image, landmarks, self.encoder).numpy().astype(np.float64)}
        if self.dlib is not None:
            out["dlib"] = self.dlib.describe(image, landmarks)
        return out


METRIC = {"ours": "cosine", "dlib": "euclidean"}


def read_frames(path: Path, count: int) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) >= count:
                break
    return frames


def describe_photo(path: Path, describe: Describer, detect: Any) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    image = read_image(path)
    found = detect_faces_in_image(image, detect)
    if not found:
        raise SystemExit(f"error: no face found in {path}: pick another photo for this person in bench/face_split.json")
    return describe(image, found[0].landmarks), image, found[0].landmarks


def face_box(landmarks: np.ndarray, shape: tuple[int, ...], margin: float = 0.15) -> tuple[slice, slice]:
    low, high = landmarks.min(axis=0), landmarks.max(axis=0)
    pad = margin * (high - low)
    left, top = np.maximum(low - pad, 0).astype(int)
    right, bottom = np.minimum(high + pad, (shape[1], shape[0])).astype(int)
    return slice(top, bottom), slice(left, right)


def labelled(tile: np.ndarray, text: str) -> np.ndarray:
    label = np.full((22, tile.shape[1], 3), 255, np.uint8)
    cv2.putText(label, text, (3, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([label, tile])


def to_height(image: np.ndarray, height: int) -> np.ndarray:
    return cv2.resize(image, (max(1, round(image.shape[1] * height / image.shape[0])), height), interpolation=cv2.INTER_AREA)


def stack_rows(rows: list[np.ndarray]) -> np.ndarray:
    width = max(r.shape[1] for r in rows)
    return np.vstack([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])


@dataclass
class PairRun:
    readings: PairReadings
    tiles: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # judged frame → the face box of input, output
    dlib_by_frame: dict[int, float] = field(default_factory=dict)


def measure_run(keep: Keep, inputs: list[np.ndarray], readings: PairReadings, gallery: dict[str, np.ndarray], source_row: int, target_row: int,
                source_photos: dict[str, np.ndarray], input_faces: dict[int, dict[str, np.ndarray]], describe: Describer) -> PairRun:
    run = PairRun(readings)
    regions: list[np.ndarray | None] = []
    outputs: list[np.ndarray] = []
    for t, frame in enumerate(inputs):
        kept = keep.frames.get(t)
        outputs.append(frame if kept is None else kept.output)
        usable = kept is not None and kept.usable and kept.landmarks is not None
        regions.append(face_region(frame.shape, kept.landmarks) if usable and kept is not None and kept.landmarks is not None else None)
        if not usable or kept is None or kept.landmarks is None:
            continue
        readings.usable += 1
        region = regions[-1]
        assert region is not None
        readings.sharpness.append(sharpness(kept.output, region) / max(sharpness(frame, region), 1e-6))
        if t % BLOTCH_EVERY == 0 and (colour := blotches(frame, kept.output, kept.landmarks)) is not None:
            readings.cast.append(colour.cast)
            readings.blotch_p95.append(colour.deviation_p95)
            readings.blotch_share.append(colour.blotch_share)
        if t in input_faces:
            swapped = describe(kept.output, kept.landmarks)
            for name, vector in swapped.items():
                verdict = judge(vector, gallery[name], source_photos[name], input_faces[t][name], METRIC[name])
                readings.judged(name, verdict.nearest == source_row, verdict.nearest == target_row, verdict.closer_to_source, verdict.to_source)
                if name == "dlib":
                    run.dlib_by_frame[t] = verdict.to_source
            box = face_box(kept.landmarks, kept.output.shape)
            run.tiles[t] = (frame[box], kept.output[box])
    readings.frames = len(inputs)
    flicker = flicker_on_still_pairs(inputs, outputs, regions)
    readings.flicker, readings.still_pairs = flicker.ratio, flicker.still_pairs
    if flicker.output_change is not None and flicker.input_change is not None:
        readings.flicker_grey = (flicker.output_change, flicker.input_change)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--generator", type=Path, default=ROOT / "models" / "aei-net-v2.safetensors")
    parser.add_argument("--identity-encoder", type=Path, default=ROOT / "models" / "identity-encoder-v1.safetensors")
    parser.add_argument("--split", type=Path, default=ROOT / "bench" / "face_split.json")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--clips", nargs="+", help="a subset of the split's clips")
    parser.add_argument("--sources", nargs="+", help="a subset of the split's sources")
    parser.add_argument("--frames", type=int, default=150, help="frames per clip from its start (fewer when the clip is shorter)")
    parser.add_argument("--backends", nargs="+", default=["cpu"])
    parser.add_argument("--detail", type=float, help="the delivered run's --detail (default: the pipeline's)")
    parser.add_argument("--steady", type=float, help="the delivered run's --steady (default: the pipeline's)")
    parser.add_argument("--no-generator-run", action="store_true", help="skip the generator-alone run (half the time)")
    parser.add_argument("--no-dlib", action="store_true", help="our encoder only (not a result to quote: the generator trained against it)")
    parser.add_argument("--worst", type=int, default=4, help="pairs in the worst-pairs grid")
    parser.add_argument("--swapper", choices=("generator", "reenact"), default="generator",
                        help="reenact: the source photo warped onto each face (issue 33's design b without its refiner); the generator file still sets the crop size")
    args = parser.parse_args()

    split = load_split(args.split)
    lfw, videos = args.shared / "data" / "faces" / "lfw-deepfunneled", args.shared / "data" / "videos"
    missing = missing_data(split, lfw, videos)
    if missing:
        raise SystemExit(f"error: the face report's data is missing ({missing[0]}, {len(missing)} in all): point --shared at the folder holding data/videos and data/faces")
    clips = tuple(args.clips or split.eval_clips)
    sources = tuple(args.sources or split.sources)
    unknown = sorted(set(clips) - set(split.eval_clips)) + sorted(set(sources) - set(split.sources))
    if unknown:
        raise SystemExit(f"error: {unknown} are not in {args.split}'s evaluation split: use its eval_clips and sources")
    dlib = None
    if not args.no_dlib:
        from realtime.eval.swap_measures import DlibJudge

        try:
            dlib = DlibJudge()
        except ImportError as exc:
            raise SystemExit(f"error: {exc} (or --no-dlib, not a result to quote)") from None
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    describe = Describer(load_identity_encoder(args.identity_encoder), dlib)
    detect = build_config().detect
    judges = ("ours",) if dlib is None else ("ours", "dlib")

    # The gallery: each source's second photo, each clip's person (its first frame; never judged), the distractors.
    print(f"gallery: {split.gallery_size()} faces", flush=True)
    rows: list[dict[str, np.ndarray]] = []
    source_photos: dict[str, dict[str, np.ndarray]] = {}
    same_person: dict[str, dict[str, float]] = {}
    worn: dict[str, np.ndarray] = {}
    for person in split.sources:
        photos = photos_of(lfw, person)
        worn_vectors, worn[person], _ = describe_photo(photos[0], describe, detect)
        others = [describe_photo(p, describe, detect)[0] for p in photos[1:4]]
        rows.append(others[0])
        source_photos[person] = {name: np.stack([o[name] for o in others]) for name in judges}
        # what "the same person" reads: the photo worn against the other three
        to_others = {name: judge(worn_vectors[name], source_photos[person][name], source_photos[person][name], worn_vectors[name], METRIC[name]).to_source for name in judges}
        same_person[person] = {f"{name}_{'cosine' if METRIC[name] == 'cosine' else 'distance'}": round(1 - d if METRIC[name] == "cosine" else d, 3) for name, d in to_others.items()}
    for clip in split.eval_clips:
        first = read_frames(videos / f"{clip}.mp4", 1)[0]
        found = detect_faces_in_image(first, detect)
        if not found:
            raise SystemExit(f"error: no face on the first frame of {clip}")
        rows.append(describe(first, found[0].landmarks))
    for person in split.distractors:
        rows.append(describe_photo(photos_of(lfw, person)[0], describe, detect)[0])
    gallery = {name: np.stack([r[name] for r in rows]) for name in judges}

    if args.swapper == "reenact":  # the photo has no eyes or mouth interior to match the target's: keep the target's
        from realtime.eval.reenact_swap import swap_stage_replaced_by_reenactment

        swapping: Callable[[], contextlib.AbstractContextManager[None]] = swap_stage_replaced_by_reenactment
        fixed = {"keep_eyes": True, "keep_mouth": True}
    else:
        swapping, fixed = contextlib.nullcontext, {}
    variants = [("delivered", {**({} if args.detail is None else {"detail": args.detail}), **({} if args.steady is None else {"steady": args.steady})})]
    if not args.no_generator_run:
        variants.append(("generator", {"detail": 0.0, "steady": 0.0}))
    results: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in variants}
    runs: dict[tuple[str, str, str], PairRun] = {}
    settings: dict[str, dict[str, float]] = {}
    total, done = len(clips) * len(sources) * len(variants), 0
    for clip in clips:
        inputs = read_frames(videos / f"{clip}.mp4", args.frames)
        input_faces: dict[int, dict[str, np.ndarray]] = {}
        for source in sources:
            for variant, overrides in variants:
                keep = Keep()
                config = build_config(overrides={
                    "input": str(videos / f"{clip}.mp4"), "max_frames": args.frames, "generator": str(args.generator),
                    "identity_encoder": str(args.identity_encoder), "source": str(photos_of(lfw, source)[0]), "backends": tuple(args.backends),
                    "detect_mode": "sync", "face_safety": "reveal", "quiet": True, **fixed, **overrides,
                })
                settings[variant] = {"detail": config.blend.detail, "steady": config.swap.steady}
                with swapping():
                    app.run(config, extra_sinks=[lambda _info, keep=keep: keep])
                if not input_faces:  # the input's own faces on the judged frames, by the pipeline's landmarks
                    for t in range(JUDGE_EVERY // 2, len(inputs), JUDGE_EVERY):
                        kept = keep.frames.get(t)
                        if kept is not None and kept.landmarks is not None:
                            input_faces[t] = describe(inputs[t], kept.landmarks)
                readings = PairReadings(source, clip)
                run = measure_run(keep, inputs, readings, gallery, split.sources.index(source), len(split.sources) + split.eval_clips.index(clip),
                                  source_photos[source], input_faces, describe)
                runs[(variant, source, clip)] = run
                row = pair_row(readings)
                results[variant].append(row)
                done += 1
                eta = (time.monotonic() - started) / done * (total - done)
                print(f"[{done}/{total}] {variant} {source} × {clip}: " + ", ".join(f"{k} {row[k]}" for k in TABLE_KEYS if row.get(k) is not None) + f"; ETA {eta / 60:.0f} min", flush=True)
                (args.out / "face-report.partial.json").write_text(json.dumps(results, indent=1) + "\n")

    report: dict[str, Any] = {
        "generator": args.generator.name if args.swapper == "generator" else "reenactment warp (no network)", "backends": args.backends, "frames_per_clip": args.frames, "judged_every": JUDGE_EVERY,
        "gallery_faces": split.gallery_size(), "split": str(args.split.relative_to(ROOT)) if args.split.is_relative_to(ROOT) else str(args.split),
        "same_person_baseline": same_person, "settings": settings, "columns": {k: v[0] for k, v in COLUMNS.items()},
    }
    markdown = [f"# Face report: {report['generator']}\n", f"{len(clips)} clips × {len(sources)} sources, {args.frames} frames each (native resolution), identity judged every {JUDGE_EVERY}th frame against {split.gallery_size()} faces.\n",
                "Same-person baseline (the photo worn against the source's other photos): " + "; ".join(f"{p} {v}" for p, v in same_person.items()) + "\n"]
    for variant, rows_of in results.items():
        report[variant] = {
            "pairs": rows_of, "mean": means(rows_of)["all"], "by_source": means(rows_of, "source"), "by_clip": means(rows_of, "clip"), "worst": worst_pairs(rows_of),
            "pairs_under_90pct_closer_dlib": failing_share(rows_of, "dlib_closer", 0.9),
        }
        markdown += [f"\n## {variant} ({settings[variant]})\n", markdown_table(rows_of, TABLE_KEYS), ""]
        markdown += ["\nBy source (mean over clips):\n", markdown_table([{"source": s, "clip": "all", **m} for s, m in means(rows_of, "source").items()], TABLE_KEYS)]
    (args.out / "face-report.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / "face-report.md").write_text("\n".join(markdown) + "\n")
    (args.out / "face-report.partial.json").unlink(missing_ok=True)
    write_grids(args.out, runs, results, worn, clips, sources, args.worst)
    print(json.dumps({v: report[v]["mean"] for v in results}))
    print(f"wrote {args.out}/face-report.md, face-report.json, worst-pairs.jpg, all-pairs.jpg in {(time.monotonic() - started) / 60:.1f} min")


def write_grids(out: Path, runs: dict[tuple[str, str, str], PairRun], results: dict[str, list[dict[str, Any]]],
                worn: dict[str, np.ndarray], clips: tuple[str, ...], sources: tuple[str, ...], count: int) -> None:
    """worst-pairs.jpg: the pairs whose delivered frames are least often closer to the source (dlib,
    else ours), each at its worst judged frame, at the clip's own resolution; all-pairs.jpg: every
    pair's middle judged frame, scaled to one height for the overview."""
    key = "dlib_closer" if any(r.get("dlib_closer") is not None for r in results["delivered"]) else "ours_closer"
    ranked = sorted(results["delivered"], key=lambda r: (r[key] if r[key] is not None else 2.0, -(r.get("dlib_to_source") or 0)))
    grid_rows = []
    for row in ranked[:count]:
        delivered = runs[("delivered", row["source"], row["clip"])]
        if not delivered.tiles:
            continue
        t = max(delivered.dlib_by_frame, key=lambda f: delivered.dlib_by_frame[f]) if delivered.dlib_by_frame else sorted(delivered.tiles)[len(delivered.tiles) // 2]
        input_tile, tile = delivered.tiles[t]
        height = tile.shape[0]
        generator = runs.get(("generator", row["source"], row["clip"]))
        source_tile = to_height(worn[row["source"]][60:190, 60:190], height)  # LFW deep-funneled: the face in the central ~130 px
        tiles = [labelled(input_tile, "input"), labelled(tile, f"delivered ({key} {row[key]})")]
        if generator is not None and t in generator.tiles:
            tiles.append(labelled(generator.tiles[t][1], "generator alone"))
        tiles.append(labelled(source_tile, f"source {row['source']} (scaled)"))
        grid_rows.append(labelled(np.hstack([np.pad(x, ((0, max(0, height + 22 - x.shape[0])), (0, 0), (0, 0)), constant_values=255)[: height + 22] for x in tiles]), f"{row['clip']} frame {t}, native resolution"))
    if grid_rows:
        cv2.imwrite(str(out / "worst-pairs.jpg"), cv2.cvtColor(stack_rows(grid_rows), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    blank = np.full((OVERVIEW_PX, OVERVIEW_PX, 3), 200, np.uint8)
    inputs_row = [labelled(blank, "source \\ clip")]
    for clip in clips:
        first = runs[("delivered", sources[0], clip)].tiles.get(middle_frame(runs, clip, sources))
        inputs_row.append(labelled(to_height(first[0], OVERVIEW_PX)[:, :OVERVIEW_PX] if first else blank, clip[-14:]))
    overview = [np.hstack([np.pad(x, ((0, 0), (0, OVERVIEW_PX - x.shape[1]), (0, 0)), constant_values=255) for x in inputs_row])]
    for source in sources:
        tiles = [labelled(to_height(worn[source][60:190, 60:190], OVERVIEW_PX), source[:18])]
        for clip in clips:
            run = runs[("delivered", source, clip)]
            t = middle_frame(runs, clip, sources)
            tile = run.tiles[t][1] if t in run.tiles else blank
            tiles.append(labelled(to_height(tile, OVERVIEW_PX)[:, :OVERVIEW_PX], f"dlib {run.dlib_by_frame.get(t, float('nan')):.2f}"))
        overview.append(np.hstack([np.pad(x, ((0, 0), (0, OVERVIEW_PX - x.shape[1]), (0, 0)), constant_values=255) for x in tiles]))
    cv2.imwrite(str(out / "all-pairs.jpg"), cv2.cvtColor(stack_rows(overview), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])


def middle_frame(runs: dict[tuple[str, str, str], PairRun], clip: str, sources: tuple[str, ...]) -> int:
    judged = sorted(runs[("delivered", sources[0], clip)].tiles)
    return judged[len(judged) // 2] if judged else 0


if __name__ == "__main__":
    main()
