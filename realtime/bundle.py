"""The one record that flows through the pipeline.

A stage reads what earlier stages wrote and adds its own fields; nothing is copied between stages,
so a preview or a report can look at any intermediate. Times are ``time.perf_counter_ns()`` stamps
(``t_<event>_ns``); durations are ``<name>_ms``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from realtime.choices import FaceState

if TYPE_CHECKING:
    import torch

    from realtime.gpu.frames import DeviceFrame

FRAME_POLL_S = 0.0002  # a sink's poll of a frame on its way back from the GPU (the copy takes ~1 ms)


@dataclass(frozen=True)
class StageTiming:
    """How long a frame waited in the queue before a stage, and how long the stage took."""

    wait_ms: float
    process_ms: float


@dataclass(eq=False)
class Detection:
    """One face the landmarker found: (478, 2) landmarks in frame pixels, plus optional extras."""

    landmarks: np.ndarray
    blendshapes: dict[str, float] | None = None
    head_pose: np.ndarray | None = None  # 4×4 facial transformation matrix


@dataclass(frozen=True)
class Swapped:
    """A face's generated crop, (S, S, 3) uint8 RGB, and the generator's own (S, S) mask in [0, 1]
    when it makes one: NumPy arrays on the host, or torch tensors the swap stage left on the GPU
    (when the frame is kept there, gpu/frames.py). A per-face effect handles one of these."""

    crop: np.ndarray | torch.Tensor
    mask: np.ndarray | torch.Tensor | None = None

    @property
    def on_device(self) -> bool:
        return not isinstance(self.crop, np.ndarray)

    def host(self) -> HostSwapped:
        """The same on the host (copied from the device, waiting for it, when it is there)."""
        crop, mask = self.crop, self.mask
        return HostSwapped(
            crop if isinstance(crop, np.ndarray) else crop.cpu().numpy(),
            None if mask is None else mask if isinstance(mask, np.ndarray) else mask.cpu().numpy(),
        )


@dataclass(frozen=True)
class HostSwapped(Swapped):
    """A ``Swapped`` known to be on the host: what ``Swapped.host()`` gives."""

    crop: np.ndarray
    mask: np.ndarray | None = None

    def host(self) -> HostSwapped:
        return self


@dataclass(eq=False)
class Face:
    """A tracked face on one frame, ready to be aligned, swapped and blended.

    ``landmarks`` are smoothed (or predicted, when the detector did not see it this frame);
    ``raw_landmarks`` are this frame's detection, if any. ``alpha`` in [0, 1] fades a face in at
    birth and out when it is lost, so a swap never pops. ``crop_from_frame`` and its inverse
    ``frame_from_crop`` are 2×3 matrices for the ``crop_size``² aligned crop. ``state``:
    'tentative' (seen, not yet confirmed by the tracker's birth hysteresis: never swapped, covered
    by the face-safety policy), 'live' (seen within the coast time) or 'lost' (missed for longer).
    ``confirmed_for_s``: how long the track has been confirmed (established faces are swapped
    first). ``swapped`` is the swap stage's result for the face (None: not swapped this frame).
    ``blended`` is set by the blend stage on each face it composited into the frame.
    ``other`` is set by the swap stage on a face it does not serve because every slot of
    ``--max-faces`` is taken (a passer-by): ``--others`` says whether it is swapped, covered or shown.
    """

    track_id: int
    landmarks: np.ndarray
    raw_landmarks: np.ndarray | None
    box: tuple[float, float, float, float]
    alpha: float
    crop_from_frame: np.ndarray
    frame_from_crop: np.ndarray
    crop_size: int
    detection: Detection | None = None
    swapped: Swapped | None = None
    state: FaceState = "live"
    confirmed_for_s: float = 0.0
    blended: bool = False
    other: bool = False  # over --max-faces, not the wearer's: --others decides what the viewer sees

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)


@dataclass(eq=False)
class FrameBundle:
    """One captured frame and everything the stages learn about it.

    ``frame`` is H×W×3 uint8 RGB. ``media_time_s`` is the frame's presentation time in the source
    (seconds from the first frame, increasing across ``--loop`` passes); sinks use it for timestamps.
    """

    frame_id: int
    t_capture_ns: int
    frame: np.ndarray
    media_time_s: float
    timings: dict[str, StageTiming] = field(default_factory=dict)
    t_enqueued_ns: int = 0
    detections: list[Detection] | None = None  # None: the detector produced nothing new for this frame
    detections_media_time_s: float | None = None  # the frame time the detections were taken at
    faces: list[Face] = field(default_factory=list)  # confirmed tracks ('live' or 'lost')
    tentative_faces: list[Face] = field(default_factory=list)  # new faces not yet confirmed (never swapped)
    scene_cut: bool = False  # the tracker found a cut before this frame and ended every track
    # No face on this frame can be located: a cut ended every track and the detector has not yet
    # reported on a frame of the new shot. Under a covering policy the whole picture is covered.
    blind: bool = False
    swap_version: int | None = None  # the live swap choices this frame was swapped under (control panel)
    input_preview: np.ndarray | None = None  # a small copy of the input, made only while the panel shows it
    failed_stages: list[str] = field(default_factory=list)
    device_frame: DeviceFrame | None = None  # this frame's copy on the GPU, when stages keep it there
    frame_ready: torch.cuda.Event | None = None  # to wait for before reading ``frame`` (its download from the GPU)

    def wait_for_frame(self, stop: threading.Event | None = None) -> bool:
        """Block until ``frame`` holds its final pixels (sinks call this before writing); False
        if ``stop`` was set first. With ``stop`` the wait polls, so a sink whose frame never
        arrives (a stuck GPU) still stops and closes its file instead of hanging with it."""
        if self.frame_ready is None:
            return True
        if stop is None:
            self.frame_ready.synchronize()
            return True
        while not self.frame_ready.query():
            if stop.is_set():
                return False
            time.sleep(FRAME_POLL_S)
        return True

    @property
    def height(self) -> int:
        return int(self.frame.shape[0])

    @property
    def width(self) -> int:
        return int(self.frame.shape[1])
