"""Frames resident on the GPU between capture and the sinks: one upload, one download.

The capture stage hands each decoded frame to ``DeviceFrames.upload``: it is copied into a pinned
host buffer and sent to the GPU on an upload stream, without waiting. The swap stage crops faces
from that copy and the blend stage pastes them back into it; the frame comes back to the host
once, after the blend, and the sinks wait for that download (``FrameBundle.wait_for_frame``).

Streams are ordered by events, not by waiting on the host: each stage that works on a frame
first makes its stream wait for the frame's ``ready`` event, then records a new one after its
own work. Buffers come from torch's caching allocators (device memory and pinned host memory),
which reuse the same blocks frame after frame; ``record_stream`` tells the device allocator
which streams still use a frame, so its block is not handed out again before they are done.

On a CPU device (tests) the same calls run without streams: the "device" frame is the host
frame itself.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from realtime.gpu.gate import GPU_GATE, register_stream

log = logging.getLogger("realtime")


def same_device(a: torch.device, b: torch.device) -> bool:
    """``cuda`` and ``cuda:0`` are one device (torch.device's == says they differ)."""
    def index(d: torch.device) -> int:
        return d.index if d.index is not None else (torch.cuda.current_device() if d.type == "cuda" else 0)

    return a.type == b.type and index(a) == index(b)


@dataclass(eq=False)
class DeviceFrame:
    """One frame on the device: (H, W, 3) uint8 RGB and the event after its latest GPU work."""

    tensor: torch.Tensor
    ready: Any = None  # torch.cuda.Event, or None on a CPU device

    def wait_on(self, stream: Any) -> None:
        """Make ``stream`` wait for the frame's latest work, and keep its memory for ``stream``."""
        if stream is None:
            return
        if self.ready is not None:
            stream.wait_event(self.ready)
        self.tensor.record_stream(stream)

    def done_on(self, stream: Any) -> None:
        """Record that the work just queued on ``stream`` is the frame's latest."""
        if stream is not None:
            self.ready = stream.record_event()


class DeviceFrames:
    """Uploads frames for the stages that keep working on the GPU; can be switched off once."""

    def __init__(self, device: str | torch.device) -> None:
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.stream = torch.cuda.Stream(self.device) if self.cuda else None
        if self.stream is not None:
            register_stream("upload", self.stream)
        self._enabled = threading.Event()
        self._enabled.set()
        self.uploaded = 0

    @property
    def enabled(self) -> bool:
        return self._enabled.is_set()

    def disable(self, why: str) -> None:
        """A stage that cannot work on the device (e.g. the generator fell back to the CPU)
        turns uploads off: frames then travel on the host only."""
        if self._enabled.is_set():
            self._enabled.clear()
            log.info("frames stay on the host: %s", why)

    def upload(self, frame: np.ndarray) -> DeviceFrame | None:
        """The frame's device copy (queued, not waited for); None when switched off."""
        if not self._enabled.is_set():
            return None
        self.uploaded += 1
        if not self.cuda:
            return DeviceFrame(torch.from_numpy(frame))
        staging = torch.empty(frame.shape, dtype=torch.uint8, pin_memory=True)  # cached pinned block
        staging.numpy()[...] = frame
        with GPU_GATE.shared(), torch.cuda.stream(self.stream):
            tensor = staging.to(self.device, non_blocking=True)
            result = DeviceFrame(tensor)
            result.done_on(self.stream)
        return result

    def describe(self) -> dict[str, object]:
        return {"device": str(self.device), "enabled": self.enabled, "frames_uploaded": self.uploaded}


def download(frame: DeviceFrame, stream: Any) -> tuple[np.ndarray, Any]:
    """The frame back on the host (pinned) and the event that says the copy has landed, queued on
    ``stream``: the caller has ordered that stream after the frame's work (``wait_on``) and done
    its own there. On a CPU device: the frame itself, no event."""
    if stream is None:
        return frame.tensor.numpy(), None
    host = torch.empty(tuple(frame.tensor.shape), dtype=torch.uint8, pin_memory=True)
    with torch.cuda.stream(stream):
        host.copy_(frame.tensor, non_blocking=True)
        event = stream.record_event()
    return host.numpy(), event
