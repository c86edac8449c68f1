"""The refiner of design b ("reenact and refine", issue 33): a small U-Net that takes the source
photo already carried onto the target's pose (``vision.reenact``), where that warp holds photo
pixels, and the target's crop with its face blurred to a lighting cue, and returns the face as the
target's camera would have seen the source: the target's light and colour, no seam, the warp's
stretch repaired. The identity is in the warped pixels; the refiner is trained not to lose it.

Shapes: target context (B, 3, S, S) and warped source (B, 3, S, S) in [-1, 1], warp mask
(B, 1, S, S) in [0, 1] → ((B, 3, S, S) in [-1, 1],), a generator's output tuple.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from realtime.models.hyperparameters import OneOf, Rule, Whole
from realtime.vision.landmarks import plausible_face_layout
from realtime.vision.reenact_torch import reenact, region_masks, target_context

HYPERPARAMETERS: dict[str, Rule] = {
    "crop_size": OneOf((128, 256, 512)),
    "width": Whole(1, 256),
    "levels": Whole(1, 7),
    "max_mult": Whole(1, 64),
}


def _block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(c_out, c_out, 3, 1, 1), nn.LeakyReLU(0.2),
    )


class ReenactRefiner(nn.Module):
    """An encoder of ``levels`` halvings (channels doubling from ``width``, capped at
    ``width × max_mult``) and a decoder that upsamples and joins each level's skip. The output is
    the warped source plus a correction where the warp holds pixels, and the network's own
    painting elsewhere (a turned head shows cheek the photo never had)."""

    def __init__(self, *, crop_size: int = 256, width: int = 16, levels: int = 5, max_mult: int = 8) -> None:
        super().__init__()
        if crop_size % (1 << levels):
            raise ValueError(f"crop size {crop_size} is not divisible by 2^{levels}")
        self.crop_size = crop_size
        widths = [width * min(1 << i, max_mult) for i in range(levels + 1)]
        self.stem = _block(7, widths[0], 1)
        self.down = nn.ModuleList(_block(widths[i], widths[i + 1], 2) for i in range(levels))
        self.up = nn.ModuleList(_block(widths[i + 1] + widths[i], widths[i], 1) for i in reversed(range(levels)))
        self.head = nn.Conv2d(widths[0], 4, 3, 1, 1)
        nn.init.zeros_(self.head.weight)  # at step 0 the output is the warped source where it has pixels
        assert self.head.bias is not None
        nn.init.zeros_(self.head.bias)

    def forward(self, context: torch.Tensor, warped: torch.Tensor, warp_mask: torch.Tensor) -> tuple[torch.Tensor]:
        x = self.stem(torch.cat([context, warped, warp_mask * 2 - 1], dim=1))
        skips = [x]
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = block(torch.cat([F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False), skip], dim=1))
        head = self.head(x)
        correction, painted = head[:, :3], head[:, 3:]
        # where the warp holds photo pixels: those pixels, corrected; elsewhere: painted from context
        base = warped * warp_mask + context * (1 - warp_mask)
        return (torch.tanh(torch.atanh(base.clamp(-0.999, 0.999)) + correction + painted * (1 - warp_mask)),)


class ReenactSwapper(nn.Module):
    """A refiner ready to swap: it holds the source's aligned crop and landmarks (``set_source``)
    and takes what the swap stage has for each face, its crop and its landmarks in that crop, so
    the backends run it like any generator: (crops (B, 3, S, S) in [-1, 1], points (B, 478, 2)) →
    ((B, 3, S, S),): the source warped onto each face and refined, in the face's own crop (outside
    the face: the crop itself, which the blend's mask leaves anyway).

    The source lives in buffers of fixed shape, changed in place: a compiled or captured runner
    reads the new face from its next call."""

    source: torch.Tensor
    source_points: torch.Tensor

    def __init__(self, refiner: ReenactRefiner) -> None:
        super().__init__()
        self.refiner = refiner
        size = refiner.crop_size
        # until a source is set: a plain grey face of a plausible layout (what build-engines and
        # warm-ups run on; a zero layout would make the spline's system singular)
        self.register_buffer("source", torch.zeros(1, 3, size, size))
        self.register_buffer("source_points", torch.from_numpy(plausible_face_layout((size / 2, 0.42 * size), 0.3 * size)).float()[None])

    def set_source(self, crop: torch.Tensor, points: torch.Tensor) -> None:
        """The source's aligned crop (3, S, S) in [-1, 1] and its landmarks (478, 2) in that crop."""
        with torch.no_grad():
            self.source.copy_(crop[None].to(self.source))
            self.source_points.copy_(points[None].to(self.source_points))

    def forward(self, crops: torch.Tensor, points: torch.Tensor) -> tuple[torch.Tensor]:
        size = self.refiner.crop_size
        batch = crops.shape[0]
        warped, inside = reenact(self.source.expand(batch, -1, -1, -1).to(crops.dtype), self.source_points.expand(batch, -1, -1), points.float(), size)
        outline, _ = region_masks(points.float(), size)
        outline = outline.to(crops.dtype)
        refined = self.refiner(target_context(crops, outline), warped.to(crops.dtype), (inside * outline).to(crops.dtype))[0]
        return (refined * outline + crops * (1 - outline),)
