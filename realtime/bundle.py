"""The one record that flows through the pipeline.

A stage reads what earlier stages wrote and adds its own fields; nothing is copied between stages,
so a preview or a report can look at any intermediate. Times are ``time.perf_counter_ns()`` stamps
(``t_<event>_ns``); durations are ``<name>_ms``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class StageTiming:
    """How long a frame waited in the queue before a stage, and how long the stage took."""

    wait_ms: float
    process_ms: float


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
    faces: list[Any] = field(default_factory=list)
    failed_stages: list[str] = field(default_factory=list)

    @property
    def height(self) -> int:
        return int(self.frame.shape[0])

    @property
    def width(self) -> int:
        return int(self.frame.shape[1])
