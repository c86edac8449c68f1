"""Graph captures never overlap other GPU work of the pipeline.

The stages submit GPU work from their own threads (uploads, the generator, the blend), and CUDA
graphs are captured now and then (the generator's at set-up, one per blend region shape). Captures
beside live frames went wrong in three ways: two captures at once
invalidated each other ("operation not permitted when stream is capturing"), a pipeline hung
with every stream waiting, and another failed with "unspecified launch failure". Each stage's
frame work is therefore *shared* use of this gate — many at once — and a capture is *exclusive*
use: it waits until no other thread is submitting and holds new work back until it is done.

A thread may capture while it holds a share itself (the blend stage builds a new region shape in
the middle of a frame); only the other threads' shares are waited for. Captures are rare once the
pipeline runs (shapes are built ahead at set-up), so holding frames back for one costs one slow
frame, not a stall per frame. Only one thread may capture while frames flow (the blend's): two
share-holders that both wanted to capture would wait for each other.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class GpuGate:
    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._shares: Counter[int] = Counter()  # per thread: how many shares it holds
        self._capturer: int | None = None
        self._depth = 0  # exclusive use re-entered by its owner

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Frame work: runs beside other frame work, never beside another thread's capture."""
        me = threading.get_ident()
        with self._condition:
            while self._capturer not in (None, me):
                self._condition.wait()
            self._shares[me] += 1
        try:
            yield
        finally:
            with self._condition:
                self._shares[me] -= 1
                if not self._shares[me]:
                    del self._shares[me]
                self._condition.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """A capture: waits for the other threads' frame work to finish and keeps new work out."""
        me = threading.get_ident()
        with self._condition:
            while self._capturer not in (None, me):
                self._condition.wait()
            self._capturer = me  # from now on no new share begins: the capture is not starved
            self._depth += 1
        try:
            with self._condition:
                while any(count for thread, count in self._shares.items() if thread != me):
                    self._condition.wait()
            yield
        finally:
            with self._condition:
                self._depth -= 1
                if not self._depth:
                    self._capturer = None
                self._condition.notify_all()


GPU_GATE = GpuGate()


# strong references: torch's CUDA streams and events must never be weakly referenced (torch 2.11
# does not clear their weakrefs when they are freed: the garbage collector then segfaults;
# pytorch pull request 183403). A stream costs nothing to keep.
_STREAMS: dict[str, Any] = {}


def register_stream(name: str, stream: Any) -> None:
    """Name a stage's CUDA stream, so that a stalled run can say which streams still had work;
    a stage made again (a new run in the same process) replaces its entry."""
    _STREAMS[name] = stream


def stream_states() -> dict[str, str]:
    """'busy' or 'idle' per registered stream (a non-blocking query each): when a run stalls, busy
    streams mean a GPU that does not finish its work, all idle a wait on something never queued."""
    return {name: ("idle" if stream.query() else "busy") for name, stream in sorted(_STREAMS.items())}
