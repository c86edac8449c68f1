"""The training data of the face's next models (issue 33), made on the CPU machine from ../shared
under bench/face_split.json, small enough to travel to the GPU machine with the tree:

- clips256: the split's *training* clips at 256 px (their native face size; the evaluation clips
  never enter), with each face's 478 landmarks;
- photos112: LFW people with one photo (those with two or more are held out for evaluation) and
  adult UTKFace faces, prepared at 128 px and merged at 112 px JPEG 80, with landmarks.

    python3 bench/face_training_data.py OUT [--utk-limit N] [--lfw-limit N]
Prints what it kept; refuses to write into an existing OUT/clips256 or OUT/photos112.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from realtime.eval.face_split import load_split  # noqa: E402
from realtime.train.data import merge_datasets, read_manifest  # noqa: E402
from realtime.train.options import PrepareOptions  # noqa: E402
from realtime.train.prepare import prepare_faces  # noqa: E402


def single_photo_people(lfw: Path, held_out: set[str], limit: int | None) -> list[Path]:
    """LFW's people with exactly one photo (never an evaluation person), in name order."""
    people = [p for p in sorted(lfw.iterdir()) if p.is_dir() and p.name not in held_out and len(list(p.glob("*.jpg"))) == 1]
    return people[:limit] if limit else people


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--split", type=Path, default=ROOT / "bench" / "face_split.json")
    parser.add_argument("--lfw-limit", type=int, help="at most this many single-photo LFW people (default: all)")
    parser.add_argument("--utk-limit", type=int, help="at most this many UTKFace files (default: all; minors are dropped either way)")
    args = parser.parse_args()
    split = load_split(args.split)
    videos, faces = args.shared / "data" / "videos", args.shared / "data" / "faces"
    args.out.mkdir(parents=True, exist_ok=True)
    clips = [videos / f"{name}.mp4" for name in split.train_clips]
    stats = prepare_faces(clips, args.out / "clips256", PrepareOptions(crop_size=256, jpeg_quality=85))
    print(f"clips256: {stats.kept} faces from {len(clips)} training clips")
    held_out = set(split.sources) | set(split.distractors)
    with tempfile.TemporaryDirectory() as scratch:
        # a folder of links: prepare-faces reads a person's name from the folder above each photo
        lfw_links = Path(scratch) / "lfw"
        for person in single_photo_people(faces / "lfw-deepfunneled", held_out, args.lfw_limit):
            (lfw_links / person.name).mkdir(parents=True)
            for photo in person.glob("*.jpg"):
                (lfw_links / person.name / photo.name).symlink_to(photo)
        utk_links = Path(scratch) / "utk"
        utk_links.mkdir()
        for photo in sorted((faces / "utkface-crop").glob("*.jpg"))[: args.utk_limit]:
            (utk_links / photo.name).symlink_to(photo)
        prepared = Path(scratch) / "photos128"
        stats = prepare_faces([lfw_links, utk_links], prepared, PrepareOptions(crop_size=128))
        print(f"photos128: {stats.kept} faces kept ({stats.minors} minors dropped, {stats.no_face} without a face)")
        count = merge_datasets([prepared], args.out / "photos112", jpeg_quality=80, crop_size=112)
    identities = {f.get("identity") for f in read_manifest(args.out / "photos112")["faces"]}
    assert not identities & held_out, "an evaluation person reached the training data"
    print(f"photos112: {count} faces; wrote {args.out}/clips256 and {args.out}/photos112")


if __name__ == "__main__":
    main()
