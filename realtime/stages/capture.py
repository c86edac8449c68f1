"""CaptureStage: turns decoded frames into frame records.

Writes: ``frame_id``, ``frame`` (H×W×3 uint8 RGB), ``t_capture_ns`` (stamped when the frame is
available, i.e. after decoding and, for paced files, after waiting for its due time, the moment a
camera would have delivered it), ``media_time_s``, ``timings['capture']`` (decode time, plus the
upload's) and, when frames are kept on the GPU, ``device_frame`` (its upload, queued right after
the stamp so the GPU copy travels while the landmarker works).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from realtime.bundle import FrameBundle, StageTiming
from realtime.io.sources import Pacer, VideoSource
from realtime.pipeline.stage import SourceStage

if TYPE_CHECKING:
    from realtime.gpu.frames import DeviceFrames

log = logging.getLogger("realtime")


class CaptureStage(SourceStage):
    name = "capture"
    writes = ("frame_id", "t_capture_ns", "frame", "media_time_s", "timings", "device_frame")

    def __init__(self, source: VideoSource, *, paced: bool, max_frames: int | None = None, uploader: DeviceFrames | None = None) -> None:
        self.source = source
        self.uploader = uploader
        self.pacer = Pacer(time.perf_counter_ns, time.sleep) if paced else None
        self.max_frames = max_frames
        self._frames: Iterator[tuple[np.ndarray, float]] | None = None
        self._next_id = 0
        self.ended = False  # the input itself ran out (not --max-frames, not a stop)

    def setup(self) -> None:
        self._frames = self.source.frames()

    def read(self) -> FrameBundle | None:
        assert self._frames is not None, "setup() opens the frame iterator"
        if self.max_frames is not None and self._next_id >= self.max_frames:
            return None
        t_start_ns = time.perf_counter_ns()
        item = next(self._frames, None)
        if item is None:
            self.ended = True
            return None
        frame, media_time_s = item
        t_decoded_ns = time.perf_counter_ns()
        if self.pacer is not None:
            self.pacer.wait_for(media_time_s)
        bundle = FrameBundle(
            frame_id=self._next_id,
            t_capture_ns=time.perf_counter_ns(),
            frame=frame,
            media_time_s=media_time_s,
        )
        upload_ns = 0
        if self.uploader is not None:
            t_upload_ns = time.perf_counter_ns()
            bundle.device_frame = self.uploader.upload(frame)
            upload_ns = time.perf_counter_ns() - t_upload_ns
        bundle.timings[self.name] = StageTiming(0.0, (t_decoded_ns - t_start_ns + upload_ns) / 1e6)
        self._next_id += 1
        return bundle

    def teardown(self) -> None:
        self.source.close()
        corrupt = int(getattr(self.source, "corrupt_packets", 0))
        if corrupt:
            log.warning("%s: %d damaged packets were skipped (their frames are missing from the output)", self.source.info.description, corrupt)
        expected = self.frames_expected
        if expected and self.ended and self._next_id < 0.95 * expected:
            log.warning(
                "%s ended after %d of its %d frames: the file is truncated or damaged (re-encode or replace it)",
                self.source.info.description, self._next_id, expected,
            )

    @property
    def frames_expected(self) -> int | None:
        """The input's frames, or --max-frames if fewer; None for a live or looped input."""
        total = self.source.info.total_frames
        return min(total, self.max_frames) if total and self.max_frames else total

    def describe(self) -> dict[str, object]:
        return {
            "frames_read": self._next_id,
            "frames_expected": self.frames_expected,
            "corrupt_packets": int(getattr(self.source, "corrupt_packets", 0)),
            "input_ended": self.ended,
        }
