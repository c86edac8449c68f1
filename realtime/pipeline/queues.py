"""Bounded queues between stages, with the two policies a live pipeline needs.

``latest_wins`` (live input): when full, the oldest frame is dropped and counted, so latency stays
bounded by the queue size instead of growing while a slow stage catches up.
``block`` (file-to-file): the producer waits, nothing is lost and order is kept.

Control items (end of stream) are never dropped and never wait for space: they must arrive.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, TypeVar

from realtime.choices import Policy

T = TypeVar("T")

class EndOfStream:
    """Marker that follows the last frame through every queue."""

    _instance: EndOfStream | None = None

    def __new__(cls) -> EndOfStream:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "END_OF_STREAM"


END_OF_STREAM = EndOfStream()


DROPPED_IDS_KEPT = 200


class FrameQueue(Generic[T]):
    """A bounded, thread-safe FIFO with a drop policy and counters."""

    def __init__(self, name: str, capacity: int, policy: Policy) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.name = name
        self.capacity = capacity
        self.policy: Policy = policy
        self._items: deque[T | EndOfStream] = deque()
        self._media_count = 0
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self.puts = 0
        self.drops = 0
        self.dropped_ids: deque[int] = deque(maxlen=DROPPED_IDS_KEPT)  # the latest dropped frames' ids
        self.peak_depth = 0

    def put(self, item: T, stop: threading.Event | None = None, poll_s: float = 0.05) -> bool:
        """Add a frame. Returns False only when ``block`` waited and ``stop`` was set meanwhile."""
        with self._lock:
            if self.policy == "latest_wins":
                while self._media_count >= self.capacity:
                    self._drop_oldest_media()
            else:
                while self._media_count >= self.capacity:
                    if stop is not None and stop.is_set():
                        return False
                    self._not_full.wait(poll_s)
            self._items.append(item)
            self._media_count += 1
            self.puts += 1
            self.peak_depth = max(self.peak_depth, self._media_count)
            self._not_empty.notify()
            return True

    def put_control(self, item: EndOfStream) -> None:
        """Add a control item behind every frame already queued; never blocks, never dropped."""
        with self._lock:
            self._items.append(item)
            self._not_empty.notify_all()

    def get(self, timeout_s: float) -> T | EndOfStream | None:
        """The next item, or None if nothing arrived within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while not self._items:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._not_empty.wait(remaining)
            item = self._items.popleft()
            if not isinstance(item, EndOfStream):
                self._media_count -= 1
                self._not_full.notify()
            return item

    def depth(self) -> int:
        with self._lock:
            return self._media_count

    def _drop_oldest_media(self) -> None:
        for index, item in enumerate(self._items):
            if not isinstance(item, EndOfStream):
                del self._items[index]
                self._media_count -= 1
                self.drops += 1
                frame_id = getattr(item, "frame_id", None)
                if frame_id is not None:
                    self.dropped_ids.append(frame_id)
                return
