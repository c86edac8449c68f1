"""Covering a face's box: a feathered blur or pixelation that no detail of the face survives.

The box is grown by ``GROW`` of its size on each side (the face box from landmarks is tight: the
hairline and ears sit outside it) and replaced, inside that grown box, by a picture made only of
the average colours of a few cells (``BLUR_CELLS``/``PIXEL_CELLS`` along the longer side): blurred
(smooth upscaling, then a Gaussian) or pixelated (blocks). Outside the grown box the cover fades
out over ``FEATHER`` of the box's size, so its edge is soft instead of a hard square. No pixel
inside the grown box keeps any of the original's own value.
"""

from __future__ import annotations

import cv2
import numpy as np

from realtime.choices import CoverMode

GROW = 0.15
FEATHER = 0.12
BLUR_CELLS = 6
PIXEL_CELLS = 12
# A whole frame is covered in cells this size: the smallest face the detector keeps (eyes 24 px
# apart, ~60 px wide) falls within two of them, so no face anywhere in the picture can be told.
FRAME_CELL_PX = 48
Box = tuple[float, float, float, float]


def covered_box(box: Box, width: int, height: int, grow: float = GROW) -> tuple[int, int, int, int]:
    """The pixels a cover replaces entirely: ``box`` grown by ``grow`` of its size on each side,
    rounded outwards and clipped to the frame (x0, y0, x1, y1; x1, y1 exclusive)."""
    x0, y0, x1, y1 = box
    pad_x, pad_y = grow * (x1 - x0), grow * (y1 - y0)
    return (
        max(0, int(np.floor(x0 - pad_x))), max(0, int(np.floor(y0 - pad_y))),
        min(width, int(np.ceil(x1 + pad_x))), min(height, int(np.ceil(y1 + pad_y))),
    )


def feather_weights(inner: tuple[int, int, int, int], outer: tuple[int, int, int, int], feather_px: float) -> np.ndarray:
    """(H, W) float32 over ``outer``: 1 inside ``inner``, falling to 0 at ``feather_px`` from it."""
    ox0, oy0, ox1, oy1 = outer
    ix0, iy0, ix1, iy1 = inner
    xs = np.arange(ox0, ox1, dtype=np.float32)
    ys = np.arange(oy0, oy1, dtype=np.float32)
    dx = np.maximum(np.maximum(ix0 - xs, xs - (ix1 - 1)), 0.0)
    dy = np.maximum(np.maximum(iy0 - ys, ys - (iy1 - 1)), 0.0)
    distance = np.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2)
    return np.clip(1.0 - distance / max(feather_px, 1.0), 0.0, 1.0).astype(np.float32)


def cell_picture(region: np.ndarray, mode: CoverMode, cells: int | None = None) -> np.ndarray:
    """``region`` (H×W×3 uint8) rebuilt from the mean colours of a few cells (``cells`` along the
    longer side; default: the face cover's), blurred or in blocks."""
    height, width = region.shape[:2]
    cells = cells or (BLUR_CELLS if mode == "blur" else PIXEL_CELLS)
    scale = cells / max(height, width)
    small_w, small_h = max(1, round(width * scale)), max(1, round(height * scale))
    small = cv2.resize(region, (small_w, small_h), interpolation=cv2.INTER_AREA)
    if mode == "pixelate":
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)
    # blurred at 1/8 of the size, then scaled up smoothly: the same look at a 64th of the work
    mid_w, mid_h = max(small_w, width // 8), max(small_h, height // 8)
    mid = cv2.resize(small, (mid_w, mid_h), interpolation=cv2.INTER_LINEAR)
    mid = cv2.GaussianBlur(mid, (0, 0), max(mid_w, mid_h) / (2.0 * cells), borderType=cv2.BORDER_REPLICATE)
    return cv2.resize(mid, (width, height), interpolation=cv2.INTER_LINEAR)


def cover_face(frame: np.ndarray, box: Box, mode: CoverMode, *, grow: float = GROW, feather: float = FEATHER) -> tuple[int, int, int, int] | None:
    """Cover ``box`` of ``frame`` (H×W×3 uint8, in place). Returns the fully covered box, or None
    when it lies outside the frame."""
    height, width = frame.shape[:2]
    inner = covered_box(box, width, height, grow)
    if inner[2] <= inner[0] or inner[3] <= inner[1]:
        return None
    feather_px = feather * max(box[2] - box[0], box[3] - box[1], 1.0)
    pad = int(np.ceil(feather_px))
    outer = (max(0, inner[0] - pad), max(0, inner[1] - pad), min(width, inner[2] + pad), min(height, inner[3] + pad))
    ox0, oy0, ox1, oy1 = outer
    region = frame[oy0:oy1, ox0:ox1]
    ix0, iy0, ix1, iy1 = inner
    picture = np.empty_like(region)
    # the cells are taken from the covered box alone: the feather ring mixes in only the picture of it
    core = cell_picture(frame[iy0:iy1, ix0:ix1], mode)
    picture[...] = cv2.resize(core, (1, 1), interpolation=cv2.INTER_AREA)  # the ring's colour: the box's mean
    picture[iy0 - oy0 : iy1 - oy0, ix0 - ox0 : ix1 - ox0] = core
    weights = feather_weights(inner, outer, feather_px)
    region[...] = cv2.blendLinear(picture, np.ascontiguousarray(region), weights, 1.0 - weights)
    return inner


def cover_frame(frame: np.ndarray, mode: CoverMode) -> None:
    """Cover all of ``frame`` (H×W×3 uint8, in place): a cut whose faces are not located yet."""
    height, width = frame.shape[:2]
    cells = max(BLUR_CELLS if mode == "blur" else PIXEL_CELLS, -(-max(height, width) // FRAME_CELL_PX))
    frame[...] = cell_picture(frame, mode, cells)
