"""One face's whole blend as one fixed-shape torch function: mask, colour match, paste-back.

Everything that changes from frame to frame (landmarks, mask sizes, opacity, the colour smoothing
weight, the two affine maps) arrives packed in one float vector, and the colour smoother's state
is a small tensor that goes in and comes out. So for a given ``RegionShape`` the function has
fixed shapes and no host transfer or sync: on CUDA it is captured once as a CUDA graph and then
replayed, one launch per face instead of dozens (the blend's GPU work is ~0.2 ms; launching it
op by op cost ~2 ms of CPU time).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from realtime.vision.align_torch import sample_affine
from realtime.vision.colour import EXPOSURE_JUMP_L, MAX_GAIN, MIN_STATS_PIXELS, STATS_STEP
from realtime.vision.colour_torch import colour_apply, colour_statistics
from realtime.vision.composite_torch import paste_region
from realtime.vision.masks_torch import mask_from_polygons

SCALARS = 6  # erode px, hole margin px, blur sigma, opacity, colour smoothing weight, detail
OPACITY = 3  # its place among the scalars
DETAIL = 5  # the detail strength's place among the scalars
MATRICES = 12  # crop_from_region and region_from_small, 2×3 each


@dataclass(frozen=True)
class RegionShape:
    """What fixes the graph: the region's size, the crop, the holes and which parts run."""

    height: int
    width: int
    crop_size: int
    points: int
    holes: tuple[tuple[int, ...], ...]
    generator_mask: bool
    colour: bool


def params_size(points: int) -> int:
    return 2 * points + SCALARS + MATRICES


def pack_params(
    out: np.ndarray, points_in_crop: np.ndarray, sizes: tuple[float, float, float], opacity: float, colour_weight: float,
    crop_from_region: np.ndarray, region_from_small: np.ndarray, detail: float = 0.0,
) -> np.ndarray:
    """Writes the per-frame inputs of ``blend_region`` into ``out`` (float32, ``params_size``)."""
    n = 2 * len(points_in_crop)
    out[:n] = points_in_crop.reshape(-1)
    out[n : n + SCALARS] = (*sizes, opacity, colour_weight, detail)
    out[n + SCALARS : n + SCALARS + 6] = crop_from_region.reshape(-1)
    out[n + SCALARS + 6 :] = region_from_small.reshape(-1)
    return out


def new_colour_state(device: torch.device | str) -> torch.Tensor:
    """(3, 3): smoothed target LAB mean, std, and a row whose first value says "started"."""
    return torch.zeros((3, 3), dtype=torch.float32, device=device)


CropCore = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, "torch.Tensor | None", torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def blend_region(region: torch.Tensor, crop: torch.Tensor, generator_mask: torch.Tensor, params: torch.Tensor, state: torch.Tensor, shape: RegionShape, core: CropCore | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The face's box of the frame (H, W, 3 uint8) with the generated crop blended in, and the new
    colour state. crop: (S, S, 3) uint8; generator_mask: (S, S) (ignored unless the shape says so).
    ``core``: ``crop_core`` for this shape, e.g. compiled by ``fused_crop_core``."""
    n = 2 * shape.points
    crop_from_region = params[n + SCALARS : n + SCALARS + 6].view(2, 3)
    region_from_small = params[n + SCALARS + 6 :].view(2, 3)
    original_small = None
    if shape.colour:  # the target's colour, sampled where the crop's statistics are taken
        small = shape.crop_size // STATS_STEP
        original_small = sample_affine(region.permute(2, 0, 1).float(), region_from_small, small, small, "zeros").permute(1, 2, 0).contiguous() / 255.0
    if core is None:
        generated, mask, state = crop_core(crop, generator_mask, params, original_small, state, shape)
    else:
        generated, mask, state = core(crop, generator_mask, params, original_small, state)
    opacity = params[n + OPACITY]
    # the detail band is always computed, its strength a parameter: turning it on or off live
    # changes no graph (a new graph is a slow frame); region_from_small's linear part is
    # STATS_STEP times region_from_crop's, and only the linear part sets the band's width
    region_from_crop = torch.cat([region_from_small[:, :2] / STATS_STEP, region_from_small[:, 2:]], dim=1)
    return paste_region(region, generated, mask, crop_from_region, opacity, (params[n + DETAIL], region_from_crop)), state


def crop_core(crop: torch.Tensor, generator_mask: torch.Tensor, params: torch.Tensor, original_small: torch.Tensor | None, state: torch.Tensor, shape: RegionShape) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Everything of the blend that happens in crop space, where shapes never depend on where the
    face is: the mask, and the colour-matched crop (float 0–255). Returns (crop, mask, state)."""
    n = 2 * shape.points
    points = params[:n].view(-1, 2)
    erode, margin, sigma, _, weight, _ = params[n : n + SCALARS].unbind()
    mask = mask_from_polygons(points, erode, margin, sigma, shape.crop_size, shape.holes)
    if shape.generator_mask:
        mask = mask * generator_mask
    generated = crop.float()
    if original_small is not None:
        generated, state = _match_colour(original_small, generated, mask, state, weight)
    return generated, mask, state


_FUSED: dict[RegionShape, CropCore] = {}


def crop_space(shape: RegionShape) -> RegionShape:
    """What of ``shape`` the crop-space maths depend on (not the box's size)."""
    return dataclasses.replace(shape, height=0, width=0)


def fused_crop_core(shape: RegionShape) -> CropCore:
    """``crop_core`` for this shape compiled by torch.compile (Inductor): the LAB maths, the
    polygon test and the blur become a few fused kernels instead of ~100 small ones, which is
    what the 256-px colour-matched blend spent its time on. One compile per crop-space shape
    (not per box size), shared by every slot; call it once outside a CUDA graph before capture."""
    key = crop_space(shape)
    if key not in _FUSED:

        def core(crop: torch.Tensor, generator_mask: torch.Tensor, params: torch.Tensor, original_small: torch.Tensor | None, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            return crop_core(crop, generator_mask, params, original_small, state, key)

        _FUSED[key] = torch.compile(core, dynamic=False, fullgraph=True)
    return _FUSED[key]


def compile_crop_core(shape: RegionShape, device: torch.device | str) -> CropCore:
    """``fused_crop_core`` for ``shape``, compiled by calls on blank inputs of its sizes on ``device``.

    The eager maths run once first: they put their constant tensors on the device (``graph_constant``),
    so the traced graph finds them there. Traced before that, the graph created them itself, was
    traced a second time on the next call (a guard on that cache), and Inductor could not cache the
    first trace: a start with saved kernels still took the whole cold compile."""
    s, small = shape.crop_size, shape.crop_size // STATS_STEP
    inputs = (
        torch.zeros((s, s, 3), dtype=torch.uint8, device=device), torch.ones((s, s), device=device),
        torch.zeros(params_size(shape.points), device=device), torch.zeros((small, small, 3), device=device) if shape.colour else None,
    )
    crop_core(*inputs, new_colour_state(device), shape)
    core = fused_crop_core(shape)
    for _ in range(2):  # the second call must reuse the compiled code (a recompile would show here)
        core(*inputs, new_colour_state(device))
    return core


def _match_colour(original: torch.Tensor, generated: torch.Tensor, mask: torch.Tensor, state: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """LAB mean/std transfer inside the mask; the target's statistics are smoothed by ``weight``
    (1: per frame) unless the state has not started yet or the face's lightness jumped by more than
    ``EXPOSURE_JUMP_L`` (a flash: the statistics start afresh). Too few mask pixels: no change."""
    step = STATS_STEP
    small_mask = mask[step // 2 :: step, step // 2 :: step].contiguous()
    stats = colour_statistics(generated, original, small_mask, step)
    started = state[2, 0] > 0
    steady_light = (stats[0, 0] - state[0, 0]).abs() <= EXPOSURE_JUMP_L  # a flash starts the statistics afresh
    w = torch.where(started & steady_light, weight, torch.ones_like(weight))
    target = state[:2] + w * (stats[:2] - state[:2])
    gain = (target[1] / stats[3]).clamp(1.0 / MAX_GAIN, MAX_GAIN)
    applied = colour_apply(generated, torch.stack([stats[2], gain, target[0]]))
    valid = (small_mask > 0.5).sum() >= MIN_STATS_PIXELS
    new_state = torch.cat([target, torch.ones_like(target[:1])])
    return torch.where(valid, applied, generated), torch.where(valid, new_state, state)
