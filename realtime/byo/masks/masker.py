"""``--occluder`` and ``--parser``: each swapped face's paste mask from users' mask models, made in
the swap stage beside the generator (on its device, batched over the frame's faces) and carried
to the blend as ``Swapped.mask``, the path a generator's own mask already takes: both blenders
multiply it into the landmark oval, so nothing in the blend changes.

The occluder reads the *input* crop (what is in front of the face: a hand, a microphone); the
parser reads the input crop by default (the real mouth, the real glasses) or, as FaceFusion and
VisoMaster do, the swapped one (``--parser-on swapped``). Each mask is finished as FaceFusion
finishes it (``refine``) and the masks multiply, as VisoMaster combines them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from realtime.byo.masks.modules import MaskNet
from realtime.byo.masks.profiles import MaskKind, detect_mask_profile, region_ids
from realtime.byo.masks.refine import refine_mask
from realtime.byo.profiles import licence_notice
from realtime.config import SwapConfig
from realtime.models.onnx.graph import load_onnx

log = logging.getLogger("realtime")
_NOTICED: set[str] = set()  # one licence notice per file and process


@dataclass(frozen=True)
class LoadedMask:
    """One mask model ready to run, and what the run report says of it."""

    net: MaskNet
    path: Path
    sha256: str

    def describe(self) -> str:
        return f"{self.path.name} as {self.net.profile.name} (sha256 {self.sha256[:12]}…)"


def load_mask_model(path: Path, kind: MaskKind, *, profile: str | None = None, colour: str | None = None, regions: tuple[int, ...] = ()) -> LoadedMask:
    """A user's occluder or parser file, converted, its family detected; ModelError names the
    file and the fix when it is not one."""
    graph, info = load_onnx(path, what=kind)
    binding = detect_mask_profile(info, kind, profile)
    if info.sha256 not in _NOTICED:
        _NOTICED.add(info.sha256)
        log.warning(licence_notice(f"{path.name} as {binding.profile.name}", info.sha256, binding.profile.licence))
    return LoadedMask(MaskNet(graph, binding, colour=colour, region_ids=regions).eval(), path, info.sha256)


class FaceMasker:
    """The occluder and the parser of a run, on one device: ``__call__`` gives each face's mask."""

    def __init__(self, occluder: LoadedMask | None, parser: LoadedMask | None, *, parser_on: str = "input") -> None:
        self.occluder, self.parser, self.parser_on = occluder, parser, parser_on
        self.device = torch.device("cpu")

    def to(self, device: torch.device) -> FaceMasker:
        for loaded in (self.occluder, self.parser):
            if loaded is not None:
                loaded.net.to(device)
        self.device = device
        return self

    @torch.inference_mode()
    def __call__(self, inputs: torch.Tensor, generated: torch.Tensor | None = None) -> torch.Tensor:
        """(N, S, S) float32 in [0, 1] on the masker's device, from the faces' input crops and,
        for ``--parser-on swapped``, their generated crops: both (N, 3, S, S) in [-1, 1]."""
        inputs = inputs.to(self.device, torch.float32)
        mask = torch.ones((inputs.shape[0], inputs.shape[-2], inputs.shape[-1]), device=self.device)
        if self.occluder is not None:
            mask = mask * refine_mask(self.occluder.net(inputs))
        if self.parser is not None:
            read = inputs if self.parser_on == "input" or generated is None else generated.to(self.device, torch.float32)
            mask = mask * refine_mask(self.parser.net(read))
        return mask

    def describe(self) -> dict[str, object]:
        return {
            "occluder": self.occluder.describe() if self.occluder else None,
            "parser": self.parser.describe() if self.parser else None,
            "parser_on": self.parser_on if self.parser else None,
            "device": str(self.device),
        }


def load_masker(config: SwapConfig) -> FaceMasker | None:
    """The run's masker from ``--occluder``/``--parser`` (None when neither is given)."""
    if not config.occluder and not config.parser:
        return None
    colour = None if config.occluder_colour == "auto" else config.occluder_colour
    occluder = load_mask_model(Path(config.occluder), "occluder", profile=config.occluder_profile, colour=colour) if config.occluder else None
    parser = load_mask_model(Path(config.parser), "parser", profile=config.parser_profile, regions=region_ids(config.parser_regions)) if config.parser else None
    return FaceMasker(occluder, parser, parser_on=config.parser_on)
