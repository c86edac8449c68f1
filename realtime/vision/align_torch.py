"""The torch twin of ``align.py``'s crop: the same sampling points as ``warp_crop``, on any device,
for a batch of faces at once. Its geometry (``invert_affine``) comes from ``align.py``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from realtime.vision.align import invert_affine
from realtime.vision.composite import box_of
from realtime.vision.composite_torch import sample_affine


def warp_crop_torch(frame: torch.Tensor, crops_from_frame: Sequence[np.ndarray], crop_size: int, batch: int | None = None) -> torch.Tensor:
    """GPU (or CPU) crops with ``warp_crop``'s sampling points: (batch, 3, crop_size, crop_size)
    float 0–255 from ``frame``, (H, W, 3) uint8 on any device, one per matrix; rows past the
    matrices stay zero. Only each crop's box of the frame is read and converted, never the whole
    frame, and the matrices go to the device in one copy (queued from pinned memory on CUDA)."""
    height, width = frame.shape[:2]
    out = torch.zeros((batch or len(crops_from_frame), 3, crop_size, crop_size), device=frame.device)
    boxes: list[tuple[int, tuple[int, int, int, int]]] = []
    matrices = []
    for index, crop_from_frame in enumerate(crops_from_frame):
        frame_from_crop = invert_affine(crop_from_frame)
        box = box_of(frame_from_crop, crop_size, width, height)
        if box is not None:
            boxes.append((index, box))
            matrices.append(frame_from_crop - np.array([[0, 0, box[0]], [0, 0, box[1]]]))  # box_from_crop
    if not boxes:
        return out
    stacked = torch.from_numpy(np.stack(matrices).astype(np.float32))
    on_device = (stacked.pin_memory() if frame.device.type == "cuda" else stacked).to(frame.device, non_blocking=True)
    for (index, (x0, y0, x1, y1)), matrix in zip(boxes, on_device, strict=True):
        out[index] = sample_affine(frame[y0:y1, x0:x1].permute(2, 0, 1).float(), matrix, crop_size, crop_size, "zeros")
    return out
