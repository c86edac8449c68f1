"""Which people the face is judged on and which it may be trained on: drawn once, by person, and
kept in the repository (``bench/face_split.json``), so no later model is trained on its own exam.

- clips: each of ../shared's talking-head clips is one person; ``eval_clips`` are the inputs the
  face report swaps, ``train_clips`` the only ones training may use.
- LFW: people with one photo may train (as they always have); people with two or more are held out.
  From them: ``sources`` (the faces worn; four or more photos each: one to wear, the rest to judge
  against) and ``distractors`` (one photo each), which with the sources' other photos and the
  clips' own people make the gallery a swapped face is ranked in.

The sources were picked by a person, by a rule written into the file (``how``), from a seeded
order of the held-out people, so that men and women of light and dark skin and an East Asian face
are all worn; a pure draw gave four older white men, which would hide exactly the failures a
streamer meets with a face unlike the training set's.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

SOURCE_MIN_PHOTOS = 4  # one worn, three to judge the swap against
GALLERY_SIZE = 100


@dataclass(frozen=True)
class FaceSplit:
    eval_clips: tuple[str, ...]
    train_clips: tuple[str, ...]
    sources: tuple[str, ...]
    distractors: tuple[str, ...]
    how: str = ""

    def gallery_size(self) -> int:
        return len(self.sources) + len(self.eval_clips) + len(self.distractors)


def check_split(split: FaceSplit) -> None:
    """ValueError naming the first rule the split breaks: nobody both judged and trained on, no
    one twice, a gallery of at least ``GALLERY_SIZE`` faces."""
    overlap = set(split.eval_clips) & set(split.train_clips)
    if overlap:
        raise ValueError(f"clips both judged and trained on: {sorted(overlap)}")
    people = split.sources + split.distractors
    if len(set(people)) != len(people):
        raise ValueError("an LFW person is listed twice among sources and distractors")
    if len(set(split.eval_clips)) != len(split.eval_clips):
        raise ValueError("a clip is listed twice")
    if not split.sources or not split.eval_clips:
        raise ValueError("the split needs at least one source and one clip to judge")
    if split.gallery_size() < GALLERY_SIZE:
        raise ValueError(f"the gallery has {split.gallery_size()} faces; at least {GALLERY_SIZE} are needed")


def load_split(path: Path) -> FaceSplit:
    """The split kept in the repository, checked."""
    raw = json.loads(path.read_text())
    split = FaceSplit(tuple(raw["eval_clips"]), tuple(raw["train_clips"]), tuple(raw["sources"]), tuple(raw["distractors"]), raw.get("how", ""))
    check_split(split)
    return split


def save_split(split: FaceSplit, path: Path) -> None:
    check_split(split)
    path.write_text(json.dumps(asdict(split), indent=1) + "\n")


def photos_of(lfw: Path, person: str) -> list[Path]:
    """A person's LFW photos, in name order (the first is the one worn or shown)."""
    return sorted((lfw / person).glob("*.jpg"))


def source_candidates(lfw: Path, seed: int) -> list[str]:
    """Held-out people with enough photos to be a source, in a seeded order to pick from."""
    counts = {p.name: len(list(p.glob("*.jpg"))) for p in sorted(lfw.iterdir()) if p.is_dir()}
    eligible = sorted(name for name, count in counts.items() if count >= SOURCE_MIN_PHOTOS)
    return [eligible[i] for i in np.random.default_rng(seed).permutation(len(eligible))]


def draw_split(lfw: Path, eval_clips: tuple[str, ...], train_clips: tuple[str, ...], sources: tuple[str, ...], seed: int, how: str) -> FaceSplit:
    """The one-time draw: the chosen ``sources``, and distractors drawn from the other held-out
    people (two or more photos) until the gallery holds ``GALLERY_SIZE`` faces."""
    counts = {p.name: len(list(p.glob("*.jpg"))) for p in sorted(lfw.iterdir()) if p.is_dir()}
    short = [name for name in sources if counts.get(name, 0) < SOURCE_MIN_PHOTOS]
    if short:
        raise ValueError(f"sources need {SOURCE_MIN_PHOTOS}+ photos: {short}")
    held_out = sorted(name for name, count in counts.items() if count >= 2)
    rng = np.random.default_rng(seed)
    chosen = tuple(sources)
    rest = [name for name in held_out if name not in chosen]
    need = GALLERY_SIZE - len(chosen) - len(eval_clips)
    if need > len(rest):
        raise ValueError(f"only {len(rest)} held-out people are left for {need} distractors")
    distractors = sorted(rest[i] for i in rng.choice(len(rest), need, replace=False))
    split = FaceSplit(eval_clips, train_clips, chosen, tuple(distractors), how)
    check_split(split)
    return split


def missing_data(split: FaceSplit, lfw: Path, videos: Path) -> list[str]:
    """What the split names that this machine's data lacks (empty: all there)."""
    missing = [f"{videos / name}.mp4" for name in split.eval_clips if not (videos / f"{name}.mp4").is_file()]
    missing += [f"{lfw / person} (needs {SOURCE_MIN_PHOTOS}+ photos)" for person in split.sources if len(photos_of(lfw, person)) < SOURCE_MIN_PHOTOS]
    missing += [str(lfw / person) for person in split.distractors if not photos_of(lfw, person)]
    return missing
