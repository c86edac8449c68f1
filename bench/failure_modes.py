"""Where a generator still fails: ``realtime eval-swap``'s trials on held-out LFW people, split by
the conditions of the face being replaced (the camera's face: head turn, side light, blown
highlights, skin tone, glasses, beard) and of the source (skin tone), with a grid for each group.

    python3 bench/failure_modes.py OUT --faces LFW_DATASET [--identities 300] [--labels LABELS.json]

The first run measures every trial and writes OUT/trials.json, OUT/thumbs.npz (the faces, for
the grids) and OUT/targets-N.jpg: numbered contact sheets of the target faces, for a person to
label glasses, beards and dark skin (no detector here is trusted for them; the skin-tone angle read
off a news photo follows its white balance and light as much as the skin). A later run with --labels
(``{"glasses": [trial numbers], "beard": [...], "dark_skin": [...]}``) reuses the measurements and adds those groups.
Outputs: OUT/groups.json, OUT/groups.md (the table) and OUT/group-NAME.jpg (source | target | swap
of up to 10 trials of each hard group, worst by dlib's distance first).
Groups are small (tens of trials): read them as where to look, not as rates to two digits."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from realtime.eval.failure_modes import conditions, group_tests, slug, summarise_group  # noqa: E402

THUMB = 128  # px of each face in the grids and sheets
SHEET_COLUMNS, SHEET_ROWS = 10, 8


def face_thumb(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The face's landmark box with a fifth of its size around it, square, THUMB px."""
    centre = (landmarks.min(axis=0) + landmarks.max(axis=0)) / 2
    half = 0.6 * float(np.ptp(landmarks, axis=0).max())
    x0, y0 = (centre - half).astype(int)
    x1, y1 = (centre + half).astype(int)
    padded = cv2.copyMakeBorder(image, THUMB, THUMB, THUMB, THUMB, cv2.BORDER_CONSTANT, value=(255, 255, 255))
    box = padded[y0 + THUMB:y1 + THUMB, x0 + THUMB:x1 + THUMB]
    return cv2.resize(box, (THUMB, THUMB), interpolation=cv2.INTER_AREA)


def measure_trials(args: argparse.Namespace) -> tuple[list[dict[str, Any]], np.ndarray, dict[str, Any]]:
    from realtime.eval.swap import evaluate_generator

    thumbs = np.full((args.identities, 3, THUMB, THUMB, 3), 255, np.uint8)  # source, target, swap
    found_conditions: dict[int, dict[str, float | None]] = {}

    def keep(index: int, images: dict[str, np.ndarray], found: dict[str, Any]) -> None:
        found_conditions[index] = conditions(images, found)
        for column, name in enumerate(("source", "target", "swap")):
            landmarks = found.get("target" if name == "swap" else name)
            if name in images and landmarks is not None:
                thumbs[index, column] = face_thumb(images[name], landmarks)

    result, _ = evaluate_generator(args.faces, args.generator, args.identity_encoder, identities=args.identities, seed=args.seed, on_swap=keep)
    trials = [{"trial": i, **row, **found_conditions.get(i, {})} for i, row in enumerate(result.pop("per_trial"))]
    return trials, thumbs, result


def write_sheets(thumbs: np.ndarray, out: Path) -> None:
    """Numbered target faces, SHEET_COLUMNS × SHEET_ROWS a sheet, for labelling by eye."""
    per_sheet = SHEET_COLUMNS * SHEET_ROWS
    for sheet, start in enumerate(range(0, len(thumbs), per_sheet)):
        tiles = []
        for index in range(start, start + per_sheet):
            tile = thumbs[index, 1].copy() if index < len(thumbs) else np.full((THUMB, THUMB, 3), 255, np.uint8)
            if index < len(thumbs):
                cv2.putText(tile, str(index), (3, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 0), 2, cv2.LINE_AA)
            tiles.append(tile)
        rows = [np.hstack(tiles[r * SHEET_COLUMNS:(r + 1) * SHEET_COLUMNS]) for r in range(SHEET_ROWS)]
        cv2.imwrite(str(out / f"targets-{sheet}.jpg"), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])


def write_group_grid(name: str, members: list[dict[str, Any]], thumbs: np.ndarray, path: Path, columns: int = 10) -> None:
    """Source / target / swap of the group's worst trials by dlib's distance (or ours)."""
    key = "dlib_to_source" if any(t.get("dlib_to_source") is not None for t in members) else "ours_to_source"
    worst_first = sorted(members, key=lambda t: (t.get(key) is None, -(t.get(key) or 0) if key == "dlib_to_source" else (t.get(key) or 0)))
    shown = worst_first[:columns]
    if not shown:
        return
    grid = np.vstack([np.hstack([thumbs[t["trial"], row] for t in shown]) for row in range(3)])
    label = np.full((40, grid.shape[1], 3), 255, np.uint8)
    cv2.putText(label, f"{name}: {len(shown)} of {len(members)} trials, worst first", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(label, "rows: source / target (the camera's face) / swap", (4, 34), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), cv2.cvtColor(np.vstack([label, grid]), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--faces", type=Path, help="a prepare-faces dataset of LFW people not trained on (needed on the first run)")
    parser.add_argument("--generator", type=Path, default=ROOT / "models" / "aei-net-v2.safetensors")
    parser.add_argument("--identity-encoder", type=Path, default=ROOT / "models" / "identity-encoder-v1.safetensors")
    parser.add_argument("--identities", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--labels", type=Path, help="JSON of hand labels: {\"glasses\": [trial numbers], \"beard\": [...]}")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    cached, thumbs_file = args.out / "trials.json", args.out / "thumbs.npz"
    if cached.is_file() and thumbs_file.is_file():
        report = json.loads(cached.read_text())
        trials, summary = report["trials"], report["summary"]
        thumbs = np.load(thumbs_file)["thumbs"]
        print(f"reusing the {len(trials)} trials measured in {cached}")
    else:
        if args.faces is None:
            parser.error("the first run needs --faces DATASET")
        trials, thumbs, summary = measure_trials(args)
        np.savez_compressed(thumbs_file, thumbs=thumbs)
        cached.write_text(json.dumps({"summary": summary, "trials": trials}, indent=1) + "\n")
        write_sheets(thumbs, args.out)
    labels = json.loads(args.labels.read_text()) if args.labels else None
    groups: dict[str, Any] = {}
    lines = ["| group | trials | ours: finds the source | dlib: finds the source (the source photo itself) | dlib: the same person | dlib: closer to the source | dlib distance | NME |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, test in group_tests(labels, len(trials)).items():
        members = [t for t in trials if test(t)]
        groups[name] = summarise_group(members)
        g = groups[name]

        def cell(value: float | None, percent: bool = True) -> str:
            return "–" if value is None else (f"{value:.0%}" if percent else f"{value:.3f}")

        lines.append(f"| {name} | {g['trials']} | {cell(g['ours_finds_source'])} | {cell(g['dlib_finds_source'])} ({cell(g['dlib_source_photo_finds_source'])}) | {cell(g['dlib_calls_it_the_source'])} | "
                     f"{cell(g['dlib_closer_to_source'])} | {cell(g['dlib_to_source'], False)} | {cell(g['nme'], False)} |")
        if name != "all" and not name.startswith(("frontal", "even", "target without", "target light", "source light")):
            write_group_grid(name, members, thumbs, args.out / f"group-{slug(name)}.jpg")
    (args.out / "groups.json").write_text(json.dumps({"generator": str(args.generator), "identities": len(trials), "labels": str(args.labels) if args.labels else None, "groups": groups}, indent=2) + "\n")
    (args.out / "groups.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
