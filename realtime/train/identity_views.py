"""Random degraded "views" of face crops, for identity losses that a generator cannot game (issue 33).

An identity loss read by one encoder on the generator's exact pixels can be paid with a shortcut:
a pattern that network maps to the source's embedding but that no other judge sees as the source.
Each encoder here reads its own random view of the swap instead (reframed, blurred, rescaled,
colour-shifted and JPEG-compressed as a camera, a video call or a re-upload would), so a pattern
pays only if it survives all of them: who the person is does, a pixel-exact trick mostly does not.

Every step is differentiable in the images, so the identity gradient reaches the generator through
the view. The random numbers are drawn once per step as tensors (``draw_view_parameters``, on the
generator's device, outside any compiled function) and applied by ``apply_view``, which has no
Python-side randomness and no data-dependent shapes: it compiles.

Images are (B, 3, S, S) in [-1, 1] (the generator's range); S a multiple of 16 (JPEG's 4:2:0
chroma at S/2 in 8×8 blocks); the trainer uses S = 112, the identity encoder's input.

JPEG is an approximation in torch, not libjpeg: RGB → YCbCr, 4:2:0 chroma, 8×8 orthonormal DCT,
quantisation by the IJG tables scaled to a per-sample quality, rounding with a straight-through
gradient, then back (chroma upsampled bilinearly, as libjpeg's "fancy" upsampling). That is all of
JPEG that loses information (entropy coding is lossless); what it leaves out is the rounding of
pixels to uint8 around the codec. A real encoder was not used: torchvision (not a dependency here)
encodes on the GPU one quality per call, in uint8, with a graph break and a host round trip, and
its output has no gradient; here every sample gets its own quality, in one batched kernel chain.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from realtime.train.common import WHOLE_BATCH, BatchShare

# The widest range of each augmentation, reached at strength 1 (strength s scales each towards
# "unchanged"). Chosen to look like what a face goes through between a camera and a judge, not
# measured: a crop to 85 % of the frame, 4 % shifts and 5° turns (an aligner's error), a face only
# 40 px wide, 1.5 px of blur, JPEG quality 30, and modest lighting and white-balance changes.
MIN_CROP = 0.85  # side of the crop / side of the image
MAX_SHIFT = 0.04  # of the image's side
MAX_ROTATION_DEG = 5.0
MIN_SIZE_PX = 40.0  # the down-and-up rescale's smallest size, for a 112 px image
MAX_BLUR_SIGMA_PX = 1.5
MIN_JPEG_QUALITY = 30.0
MAX_BRIGHTNESS = 0.1  # added, in [-1, 1] units (±13 grey levels)
MAX_CONTRAST = 0.2  # relative, around the image's mean
MAX_SATURATION = 0.3  # relative, around each pixel's grey
MAX_HUE_DEG = 10.0  # a turn of the colours about the grey axis

_DRAWS = 11  # uniform numbers a sample takes, one column each (see draw_view_parameters)
_LUMA = (0.299, 0.587, 0.114)  # JFIF's (BT.601) luma weights, also the saturation's grey

# IJG's base quantisation tables (the JPEG standard's Annex K), quality 50
_LUMA_TABLE = (
    (16, 11, 10, 16, 24, 40, 51, 61), (12, 12, 14, 19, 26, 58, 60, 55), (14, 13, 16, 24, 40, 57, 69, 56), (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77), (24, 35, 55, 64, 81, 104, 113, 92), (49, 64, 78, 87, 103, 121, 120, 101), (72, 92, 95, 98, 112, 100, 103, 99),
)
_CHROMA_TABLE = (
    (17, 18, 24, 47, 99, 99, 99, 99), (18, 21, 26, 66, 99, 99, 99, 99), (24, 26, 56, 99, 99, 99, 99, 99), (47, 66, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99), (99, 99, 99, 99, 99, 99, 99, 99), (99, 99, 99, 99, 99, 99, 99, 99), (99, 99, 99, 99, 99, 99, 99, 99),
)


class ViewParameters(NamedTuple):
    """One step's random view for each of B samples (tensors on the images' device). A NamedTuple:
    torch.compile takes it as an input like a tuple of tensors."""

    image_from_view: torch.Tensor  # (B, 2, 3) affine_grid's theta: view pixel → image, in grid units
    blur_sigma_px: torch.Tensor  # (B,)
    size_px: torch.Tensor  # (B,) integer-valued float: the side the image is shrunk to, then restored
    brightness: torch.Tensor  # (B,) added, in [-1, 1] units
    contrast: torch.Tensor  # (B,) factor around the image's mean
    colour: torch.Tensor  # (B, 3, 3) RGB mixing: saturation, then a hue turn
    jpeg_quality: torch.Tensor  # (B,) 1..100, IJG's scale


def draw_view_parameters(batch: int, strength: float, generator: torch.Generator, share: BatchShare = WHOLE_BATCH, *, size: int = 112) -> ViewParameters:
    """Each of ``batch`` samples its own view, ranges scaled by ``strength`` in [0, 1] (0: every
    parameter is the identity's). Drawn on ``generator``'s device in one call, so a GPU step needs
    no host round trip; ``share`` gives a DDP rank its rows of the whole batch's draw, as the
    trainers' other augmentations do. ``size``: the images' side, for the rescale's range."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"a view's strength must be in [0, 1], not {strength}")
    u = share.rand(batch, _DRAWS, generator=generator)  # uniform in [0, 1)
    signed = 2 * u - 1  # uniform in [-1, 1)
    crop = 1 - (1 - MIN_CROP) * strength * u[:, 0]
    shift = MAX_SHIFT * strength * signed[:, 1:3] * 2  # ×2: grid units span the side twice
    turn = math.radians(MAX_ROTATION_DEG) * strength * signed[:, 3]
    cos, sin = turn.cos() * crop, turn.sin() * crop
    image_from_view = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    smallest = size - (size - MIN_SIZE_PX * size / 112) * strength
    size_px = torch.floor(smallest + (size + 1 - smallest) * u[:, 4]).clamp(max=size)  # integers in [smallest, size]
    hue = math.radians(MAX_HUE_DEG) * strength * signed[:, 10]
    return ViewParameters(
        image_from_view=image_from_view,
        blur_sigma_px=MAX_BLUR_SIGMA_PX * strength * u[:, 5],
        size_px=size_px,
        brightness=MAX_BRIGHTNESS * strength * signed[:, 6],
        contrast=1 + MAX_CONTRAST * strength * signed[:, 7],
        colour=hue_turn(hue) @ saturation_matrix(1 + MAX_SATURATION * strength * signed[:, 8]),
        jpeg_quality=100 - (100 - MIN_JPEG_QUALITY) * strength * u[:, 9],
    )


def random_view(images: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """``images`` seen through a fresh random view each (B, 3, S, S) in [-1, 1]; strength 0
    returns ``images`` itself, untouched and without drawing."""
    if strength == 0:
        return images
    return apply_view(images, draw_view_parameters(len(images), strength, generator, size=images.shape[-1]))


def apply_view(images: torch.Tensor, view: ViewParameters) -> torch.Tensor:
    """(B, 3, S, S) in [-1, 1] → the same, through ``view``: reframe, blur and rescale, colour,
    then JPEG (a camera's order: the codec sees what the sensor and the resize made). Float32
    throughout, whatever autocast says: JPEG's rounding means nothing in bfloat16's 8 bits."""
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3] or images.shape[-1] % 16:
        raise ValueError(f"views take (B, 3, S, S) images with S a multiple of 16, not {tuple(images.shape)}")
    with torch.autocast(images.device.type, enabled=False):
        x = warp_view(images.float(), view.image_from_view)
        x = blur_and_rescale(x, view.blur_sigma_px, view.size_px)
        x = jitter_colour(x, view.brightness, view.contrast, view.colour).clamp(-1, 1)
        return compress_jpeg(x, view.jpeg_quality).clamp(-1, 1)


def warp_view(images: torch.Tensor, image_from_view: torch.Tensor) -> torch.Tensor:
    """The crop, shift and turn: each view pixel sampled (bilinear) where ``image_from_view``
    (B, 2, 3) puts it; past the edge the border repeats, as an aligner's crop of a larger frame would
    show more of the same skin and background rather than black."""
    grid = F.affine_grid(image_from_view, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def blur_and_rescale(images: torch.Tensor, sigma_px: torch.Tensor, size_px: torch.Tensor) -> torch.Tensor:
    """Gaussian blur of ``sigma_px`` (B,), then a shrink to ``size_px`` (B,) pixels (bilinear with
    antialiasing, as ``F.interpolate(antialias=True)``) and back (bilinear): both separable, so one
    (S, S) matrix per sample applied to rows and columns, and every sample its own size in one
    fixed-shape batched product (F.interpolate takes one size for the whole batch)."""
    side = images.shape[-1]
    rows_from_rows = rescale_matrix(size_px, side) @ blur_matrix(sigma_px, side)  # (B, S, S)
    return rows_from_rows[:, None] @ images @ rows_from_rows.transpose(1, 2)[:, None]


def blur_matrix(sigma_px: torch.Tensor, side: int) -> torch.Tensor:
    """(B, S, S): row u averages the pixels v with a Gaussian of σ = ``sigma_px`` around u,
    renormalised at the edges; σ → 0 gives the identity matrix."""
    pixels = torch.arange(side, device=sigma_px.device, dtype=torch.float32)
    offsets = pixels[:, None] - pixels[None, :]
    sigma = sigma_px.float().clamp(min=1e-3)[:, None, None]  # 1e-3 px: exp(−5e5) = 0 off the diagonal
    weights = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return weights / weights.sum(dim=-1, keepdim=True)


def rescale_matrix(size_px: torch.Tensor, side: int) -> torch.Tensor:
    """(B, S, S): shrink S pixels to n = ``size_px`` (triangle filter as wide as the shrink, as
    torch's antialiased bilinear; align_corners=False), then bilinear back to S. The n coarse
    pixels are laid out in the first n of S slots; the rest weigh 0 both ways."""
    device = size_px.device
    pixels = torch.arange(side, device=device, dtype=torch.float32)
    n = size_px.float()[:, None, None]
    scale = side / n  # input pixels per coarse pixel (≥ 1)
    coarse = pixels[None, :, None]  # k, a coarse pixel
    centres = (coarse + 0.5) * scale - 0.5  # where coarse pixel k sits, in input pixels
    down = torch.relu(1 - (pixels[None, None, :] - centres).abs() / scale) * (coarse < n)  # (B, k, v)
    down = down / down.sum(dim=-1, keepdim=True).clamp(min=1e-12)
    back = ((pixels[None, :, None] + 0.5) / scale - 0.5).clamp(min=0).minimum(n - 1)  # output pixel u in coarse pixels
    up = torch.relu(1 - (back - pixels[None, None, :]).abs())  # (B, u, k): 0 for k ≥ n, as back ≤ n − 1
    return up @ down


def jitter_colour(images: torch.Tensor, brightness: torch.Tensor, contrast: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """Saturation and hue (``colour``, (B, 3, 3) on RGB), contrast around each image's mean, then
    ``brightness`` added; (B,) each. Linear in the pixels, so exact in [-1, 1] units as in [0, 255]."""
    mixed = mix_channels(colour, images)
    mean = mixed.mean(dim=(1, 2, 3), keepdim=True)
    return (mixed - mean) * contrast[:, None, None, None] + mean + brightness[:, None, None, None]


def saturation_matrix(saturation: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3): each pixel pulled towards (s < 1) or pushed from (s > 1) its own grey."""
    luma = torch.tensor(_LUMA, device=saturation.device)
    grey = luma[None, :].expand(3, 3)  # row i: the grey of the pixel, whatever channel i is
    eye = torch.eye(3, device=saturation.device)
    s = saturation[:, None, None]
    return s * eye + (1 - s) * grey


def hue_turn(angle: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3): a rotation of RGB about the grey axis (1, 1, 1)/√3 by ``angle`` radians
    (Rodrigues): greys stay, colours turn round the hue circle."""
    axis = torch.full((3,), 1 / math.sqrt(3), device=angle.device)
    cross = torch.tensor([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]], device=angle.device) / math.sqrt(3)
    outer = axis[:, None] * axis[None, :]
    cos, sin = angle.cos()[:, None, None], angle.sin()[:, None, None]
    return cos * torch.eye(3, device=angle.device) + sin * cross + (1 - cos) * outer


def compress_jpeg(images: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """(B, 3, S, S) in [-1, 1] through a baseline 4:2:0 JPEG at ``quality`` (B,) each, rounding
    straight-through (see the module's docstring for what is and is not libjpeg)."""
    pixels = (images + 1) * 127.5
    ycc = rgb_to_ycbcr(pixels)
    luma, chroma = ycc[:, :1], F.avg_pool2d(ycc[:, 1:], 2)  # 4:2:0: chroma at half the side, each way
    luma_step, chroma_step = quantisation_steps(quality)
    luma = quantise_blocks(luma - 128, luma_step) + 128
    chroma = quantise_blocks(chroma - 128, chroma_step) + 128
    chroma = F.interpolate(chroma, scale_factor=2, mode="bilinear", align_corners=False)
    return ycbcr_to_rgb(torch.cat([luma, chroma], dim=1)) / 127.5 - 1


def quantisation_steps(quality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 8, 8) luma and chroma steps of IJG's quality scaling (libjpeg's jpeg_quality_scaling):
    5000/q % below 50, 200 − 2q % from 50; each step at least 1."""
    q = quality.float().clamp(1, 100)[:, None, None]
    percent = torch.where(q < 50, 5000 / q, 200 - 2 * q)
    tables = [torch.tensor(t, dtype=torch.float32, device=quality.device) for t in (_LUMA_TABLE, _CHROMA_TABLE)]
    luma, chroma = (torch.floor((t * percent + 50) / 100).clamp(1, 255) for t in tables)
    return luma, chroma


def quantise_blocks(plane: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) level-shifted samples → the same after each 8×8 block's DCT coefficients are
    rounded to multiples of ``step`` (B, 8, 8). The rounding passes gradients straight through:
    its true derivative is 0 almost everywhere, which would cut the swap off from the loss.

    The block DCT of the whole plane is one product with a block-diagonal matrix each side
    (coefficient (i, l) of block (h, w) lands at (8h + i, 8w + l)): 14× the arithmetic of 8×8
    products at 112 px, but plain batched GEMMs rather than einsums that reshuffle memory."""
    height, width = plane.shape[-2:]
    rows, columns = block_dct_matrix(height, plane.device), block_dct_matrix(width, plane.device)
    coefficients = rows @ plane @ columns.T
    steps = step.repeat(1, height // 8, width // 8)[:, None]  # (B, 1, H, W): each block's table
    scaled = coefficients / steps
    rounded = scaled + (scaled.round() - scaled).detach()
    return rows.T @ (rounded * steps) @ columns


def block_dct_matrix(side: int, device: torch.device) -> torch.Tensor:
    """(side, side): the orthonormal 8-point DCT-II on each run of 8 samples (JPEG's 2-D DCT of
    a block X is D X Dᵀ), block-diagonal."""
    k = torch.arange(8, device=device, dtype=torch.float32)[:, None]
    n = torch.arange(8, device=device, dtype=torch.float32)[None, :]
    dct = torch.cos(math.pi * (2 * n + 1) * k / 16) * 0.5
    dct = torch.cat([dct[:1] / math.sqrt(2), dct[1:]])
    return torch.block_diag(*[dct] * (side // 8))


# JFIF's full-range YCbCr (ITU-T T.871), on [0, 255] samples, and its inverse
_RGB_TO_YCC = ((0.299, 0.587, 0.114), (-0.168736, -0.331264, 0.5), (0.5, -0.418688, -0.081312))
_YCC_TO_RGB = ((1.0, 0.0, 1.402), (1.0, -0.344136, -0.714136), (1.0, 1.772, 0.0))


def rgb_to_ycbcr(pixels: torch.Tensor) -> torch.Tensor:
    matrix = torch.tensor(_RGB_TO_YCC, device=pixels.device)
    offset = torch.tensor((0.0, 128.0, 128.0), device=pixels.device)[None, :, None, None]
    return mix_channels(matrix, pixels) + offset


def ycbcr_to_rgb(ycc: torch.Tensor) -> torch.Tensor:
    matrix = torch.tensor(_YCC_TO_RGB, device=ycc.device)
    offset = torch.tensor((0.0, 128.0, 128.0), device=ycc.device)[None, :, None, None]
    return mix_channels(matrix, ycc - offset)


def mix_channels(matrix: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Each pixel's channels times ``matrix`` ((3, 3), or (B, 3, 3) per image): one batched GEMM."""
    batch, channels, height, width = images.shape
    return (matrix @ images.reshape(batch, channels, height * width)).reshape(batch, -1, height, width)
