"""A user's occluder or face parser as a torch module behind one contract: the swap's crops,
(N, 3, S, S) RGB in [-1, 1] as ``to_generator`` makes them, in; (N, S, S) float in [0, 1] out,
1 where the swapped face may be pasted. The file's own conventions (size, NHWC, BGR, range,
logits or probabilities, class ids) stay inside, so the swap stage sees one shape whatever the
family.

Both peers feed these files their swapper's crop resized to the file's size (FaceFusion, and
VisoMaster's 256/512 crops), not a crop in a template of the file's own: the crop is resized here
the same way, and the mask resized back. DeepFaceLab's own XSeg framing (its "whole face") is not
known here (ENGINES.md)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from realtime.byo.masks.profiles import MaskBinding
from realtime.models.onnx.graph import OnnxModule


def resize_square(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) → (N, C, size, size), bilinear; antialiased when shrinking, so a 512-px mask
    brought down to a 128-px crop does not alias its edges."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=images.shape[-1] > size)


class MaskNet(nn.Module):
    """The converted graph (or any module with its interface) and its binding, as a mask maker.
    ``colour``: the order the file is fed in ('rgb' or 'bgr'), its profile's unless overridden.
    ``region_ids``: parsers only, the classes that count as face."""

    def __init__(self, graph: OnnxModule | nn.Module, binding: MaskBinding, *, colour: str | None = None, region_ids: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.network = graph
        profile = binding.profile
        self.profile = profile
        self.output_index = binding.output_index
        self.bgr = (colour or profile.colour) == "bgr"
        self.register_buffer("mean", torch.tensor(profile.mean).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(profile.std).reshape(1, 3, 1, 1), persistent=False)
        self.normalise = profile.mean != (0.0, 0.0, 0.0) or profile.std != (1.0, 1.0, 1.0)
        table = torch.zeros(max(profile.classes, 1))
        table[list(region_ids)] = 1.0
        self.register_buffer("face_classes", table, persistent=False)  # class id → 1 if it is face

    def prepare(self, crops: torch.Tensor) -> torch.Tensor:
        """The swap's crops as the file takes them: its size, colour order, range and layout."""
        image = resize_square((crops.float() + 1) * 0.5, self.profile.size)
        if self.bgr:
            image = image.flip(1)
        if self.normalise:
            image = (image - self.get_buffer("mean")) / self.get_buffer("std")
        return image.permute(0, 2, 3, 1) if self.profile.channels_last else image

    def raw(self, crops: torch.Tensor) -> torch.Tensor:
        """The file's chosen output, NCHW, at the file's size."""
        out = self.network(self.prepare(crops))
        outputs = out if isinstance(out, tuple) else (out,)
        y = outputs[self.output_index].float()
        return y.permute(0, 3, 1, 2) if self.profile.channels_last else y

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) in [-1, 1] → (N, S, S) in [0, 1]: 1 = face, paste the swap here."""
        y = self.raw(crops)
        if self.profile.output == "class_logits":
            labels = y.argmax(dim=1)
            mask = self.get_buffer("face_classes")[labels][:, None]
        elif self.profile.output == "logit":
            mask = torch.sigmoid(y[:, :1])  # VisoMaster keeps > 0: sigmoid > 0.5, which the remap's floor keeps
        else:
            mask = y[:, :1].clamp(0.0, 1.0)
        return resize_square(mask, crops.shape[-1])[:, 0]
