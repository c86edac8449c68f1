"""``realtime swap-image`` and ``eval-swap``'s swapper: the live path's own stages, run once on a
still image (beside ``app.py``, which runs them on a stream)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from realtime.bundle import Detection, FrameBundle
from realtime.config import Config
from realtime.errors import ConfigError, SinkError, SourceError
from realtime.generators import resolve_crop_size
from realtime.live import LiveSettings
from realtime.photo import detect_faces_in_image, read_image
from realtime.stages.blend import BlendStage
from realtime.stages.swap import SwapStage
from realtime.stages.track import FaceTracker

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}


class StillSwapper:
    """The live path's detect → align → swap → blend, for still images, with the generator loaded
    once (``swap-image`` uses it for one image, ``eval-swap`` for hundreds)."""

    def __init__(self, config: Config) -> None:
        if not config.swap.generator:
            raise ConfigError("swapping needs --generator", "pass a generator checkpoint (.safetensors)")
        config = resolve_crop_size(config)
        self.config = config
        self.swap = SwapStage(config.swap, config.track, config.detect)
        self.swap.setup()
        # a still image has no history to smooth the colour over: match it on this frame alone
        blend = config.blend if config.blend.colour != "smoothed" else replace(config.blend, colour="per_frame")
        self.blend = BlendStage(LiveSettings(blend))

    def swap_faces(self, image: np.ndarray, detections: list[Detection]) -> FrameBundle:
        """A copy of ``image`` with every detected face swapped; the bundle keeps the aligned faces."""
        # No smoothing and no birth hysteresis: one step of the same tracker turns detections
        # into aligned faces exactly as the live path does.
        tracker = FaceTracker(replace(self.config.track, birth_hits=1, fade_s=0.0, smoothing="off"))
        bundle = FrameBundle(0, 0, image.copy(), 0.0)
        bundle.faces = tracker.step([Detection(d.landmarks) for d in detections], 0.0, 0.0)
        return self.blend.process(self.swap.process(bundle))

    def close(self) -> None:
        self.swap.teardown()


def swap_image(config: Config, target_path: Path, output_path: Path) -> int:
    """Write ``output_path``; returns how many faces were swapped."""
    if output_path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ConfigError(f"cannot write {output_path}: unknown image type", f"end the name with one of {', '.join(sorted(IMAGE_SUFFIXES))}")
    if not output_path.parent.is_dir():
        raise SinkError(f"output folder {output_path.parent} does not exist", f"create it (mkdir -p {output_path.parent})")
    if not config.swap.generator:
        raise ConfigError("swap-image needs --generator", "pass a generator checkpoint (.safetensors)")
    target = read_image(target_path)
    detections = detect_faces_in_image(target, config.detect)
    if not detections:
        raise SourceError(f"no face found in the target image {target_path}", "use a photo where the face is at least 60 pixels wide")
    swapper = StillSwapper(config)
    try:
        bundle = swapper.swap_faces(target, detections)
    finally:
        swapper.close()
    tmp = output_path.with_name(f".{output_path.stem}.tmp{output_path.suffix}")
    ok, encoded = cv2.imencode(output_path.suffix, cv2.cvtColor(bundle.frame, cv2.COLOR_RGB2BGR))
    if not ok:
        raise SinkError(f"cannot encode {output_path}", "use .png or .jpg")
    try:
        tmp.write_bytes(encoded.tobytes())
        os.replace(tmp, output_path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SinkError(f"cannot write {output_path} ({exc.strerror or exc})", "choose a writable path") from None
    return len(bundle.faces)
