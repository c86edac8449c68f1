"""The torch twin of ``align.py``: OpenCV's warpAffine sampling points on any device (``affine_grid``,
``sample_affine``: the blend's paste and colour sampling use them too), and ``warp_crop``'s crops
for a batch of faces at once. Its geometry (``invert_affine``, ``box_of``) comes from ``align.py``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from realtime.vision.align import box_of, invert_affine


def affine_grid(source_from_output: torch.Tensor, height: int, width: int, source_height: int, source_width: int) -> torch.Tensor:
    """``grid_sample``'s (1, H, W, 2) grid for output pixel (x, y) reading the source at
    ``source_from_output`` · (x, y, 1): OpenCV's warpAffine sampling points (pixel centres at
    integers). The matrix is a device tensor, so this has fixed shapes and no host transfer: it can
    run inside a CUDA graph. The grid is one (W, 2) row plus one (H, 2) column: one full-size
    kernel instead of a dozen (each a launch and a pass over the grid)."""
    device = source_from_output.device
    m = source_from_output.float()
    # normalised: grid_sample (align_corners=False) puts source pixel centres at (2i+1)/size - 1
    n = torch.stack([m[0] * (2.0 / source_width), m[1] * (2.0 / source_height)])
    shift = torch.stack([n[0, 2] + (1.0 / source_width - 1.0), n[1, 2] + (1.0 / source_height - 1.0)])
    xs = torch.arange(width, device=device, dtype=torch.float32)
    ys = torch.arange(height, device=device, dtype=torch.float32)
    along_x = torch.addcmul(shift, xs[:, None], n[:, 0])  # (W, 2)
    along_y = ys[:, None] * n[:, 1]  # (H, 2)
    return (along_y[:, None, :] + along_x[None, :, :])[None]


def sample_affine(image: torch.Tensor, source_from_output: torch.Tensor, height: int, width: int, padding: str) -> torch.Tensor:
    """Bilinear resampling of (C, H, W) float ``image`` onto a ``height``×``width`` grid (``affine_grid``)."""
    grid = affine_grid(source_from_output, height, width, image.shape[1], image.shape[2])
    return F.grid_sample(image[None].float(), grid, mode="bilinear", padding_mode=padding, align_corners=False)[0]


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
