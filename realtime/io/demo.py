"""The built-in input: a clip made from scikit-image's astronaut photo (public domain, NASA), and
a built-in face to wear, so the demo swaps with no downloads.

The face moves along a smooth, known path (pan, zoom, a little roll), so the demo runs anywhere
without a webcam and tests know the exact ground-truth transform of every frame.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import lru_cache
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from realtime.errors import SourceError
from realtime.io.sources import SourceInfo, VideoSource

DEMO_SIZE = (640, 480)
DEMO_FPS = 30.0


@lru_cache(maxsize=1)
def load_demo_face() -> np.ndarray:
    """The astronaut photo as 512×512×3 uint8 RGB, read from the scikit-image package files."""
    path = resources.files("skimage") / "data" / "astronaut.png"
    data = np.frombuffer(path.read_bytes(), np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise RuntimeError(f"cannot decode {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def demo_source_path() -> Path:
    """The built-in face to wear (``--source demo``): Grace Hopper's official US Navy portrait
    (public domain), which matplotlib ships as sample data — a different person from the clip's."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not path.is_file():
        raise SourceError(f"the demo source face {path} is missing from this matplotlib", "pass --source IMAGE, or reinstall matplotlib")
    return path


def demo_frame_from_image(index: int, *, fps: float = DEMO_FPS, size: tuple[int, int] = DEMO_SIZE) -> np.ndarray:
    """2×3 affine mapping photo pixels to frame pixels for frame ``index`` (the ground truth)."""
    t = index / fps
    width, height = size
    scale = 0.78 + 0.06 * math.sin(2 * math.pi * t / 4.0)
    angle_deg = 4.0 * math.sin(2 * math.pi * t / 3.0)
    centre_x = width / 2 + 40.0 * math.sin(2 * math.pi * t / 5.0)
    centre_y = height / 2 + 20.0 * math.sin(2 * math.pi * t / 2.5)
    image_centre = (256.0, 230.0)  # near the face, so the face stays in the frame
    frame_from_image = cv2.getRotationMatrix2D(image_centre, angle_deg, scale)
    frame_from_image[0, 2] += centre_x - image_centre[0]
    frame_from_image[1, 2] += centre_y - image_centre[1]
    return frame_from_image


@lru_cache(maxsize=4)
def _background(size: tuple[int, int]) -> np.ndarray:
    width, height = size
    ramp = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :, None]
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    colour = 40 + 50 * ramp * np.array([0.4, 0.6, 1.0], np.float32) + 30 * rows
    return np.clip(colour, 0, 255).astype(np.uint8)


def make_demo_frame(index: int, *, fps: float = DEMO_FPS, size: tuple[int, int] = DEMO_SIZE) -> np.ndarray:
    """Frame ``index`` of the demo clip: H×W×3 uint8 RGB."""
    frame_from_image = demo_frame_from_image(index, fps=fps, size=size)
    frame = _background(size).copy()
    cv2.warpAffine(
        load_demo_face(), frame_from_image, size, dst=frame,
        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT,
    )
    return frame


class DemoSource(VideoSource):
    """Frames of the demo clip; ``loop`` repeats it forever."""

    def __init__(self, *, frames: int = 150, loop: bool = False, size: tuple[int, int] = DEMO_SIZE) -> None:
        self.length = frames
        self.loop = loop
        self.size = size
        self.info = SourceInfo(
            kind="demo",
            description=f"built-in demo clip ({frames} frames)",
            width=size[0],
            height=size[1],
            fps=DEMO_FPS,
            total_frames=None if loop else frames,
            audio_path=None,
        )

    def frames(self) -> Iterator[tuple[np.ndarray, float]]:
        index = 0
        while self.loop or index < self.length:
            # The path repeats with the clip, so a looped demo is seamless up to the cut.
            yield make_demo_frame(index % self.length, size=self.size), index / DEMO_FPS
            index += 1
