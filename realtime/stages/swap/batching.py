"""Which faces reach the generator and in which batches: pure rules over the frame's faces."""

from __future__ import annotations

from realtime.bundle import Face


def batch_bucket(faces: int) -> int:
    """The static batch size that serves ``faces`` faces: the next power of two."""
    return 1 << max(0, faces - 1).bit_length()


def choose_faces(faces: list[Face], limit: int) -> list[Face]:
    """The faces worth a generator slot, at most ``limit``: confirmed faces the tracker can see
    (not tentative, not lost, not faded out), established tracks first (confirmed longer ago),
    then larger faces. The rest are left to the face-safety policy, never to an exception."""
    eligible = [face for face in faces if face.alpha > 0 and face.state != "tentative"]
    eligible.sort(key=lambda face: (face.state != "live", -round(face.confirmed_for_s, 1), -face.area))
    return eligible[:limit]


def split_batches(count: int, built: list[int]) -> list[tuple[int, int]]:
    """``count`` faces as (batch size, faces in it) over the ``built`` static batch sizes: the
    largest built size while more remain than it holds, then the smallest built size that holds
    the rest (padded). Any count is served, whatever was built."""
    sizes = sorted(built)
    if not sizes:
        raise ValueError("no batch size was built")
    chunks: list[tuple[int, int]] = []
    remaining = count
    while remaining > sizes[-1]:
        chunks.append((sizes[-1], sizes[-1]))
        remaining -= sizes[-1]
    if remaining > 0:
        chunks.append((next(size for size in sizes if size >= remaining), remaining))
    return chunks


def others_of(faces: list[Face], tentative: list[Face], chosen: list[Face], limit: int) -> list[Face]:
    """The faces the swap does not serve because all ``limit`` slots are taken (a passer-by, a
    guest): seen faces (live or new) not among ``chosen``. None while a slot is free: a new face
    may be the wearer's, and stays covered until it is swapped. A lost face is never an 'other':
    it is a wearer the detector missed, and stays held or covered."""
    if len(chosen) < limit:
        return []
    served = {id(face) for face in chosen}
    return [face for face in [*faces, *tentative] if id(face) not in served and face.state != "lost"]
