"""Stage names on the operating system's threads, so ``top -H``, ``perf``, ``py-spy`` and
``/proc/PID/task/*/comm`` tell the stages apart (Python before 3.14 leaves every thread named
after the interpreter). Threads that native libraries start later from a named thread (MediaPipe's
and torch's workers) inherit its name, so their CPU time is charged to the right stage too.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import cache

OS_NAME_BYTES = 15  # Linux keeps 15 bytes of a thread's name (16 with the terminating NUL)
_PR_SET_NAME = 15


@cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


def os_thread_name(stage: str) -> str:
    """The name a stage's thread carries in the OS: ``rt-`` and the stage, cut to what Linux keeps."""
    return f"rt-{stage}".encode()[:OS_NAME_BYTES].decode(errors="ignore")


def name_os_thread(stage: str) -> bool:
    """Name the calling thread after ``stage`` (Linux; elsewhere nothing happens). True if named."""
    libc = _libc()
    if libc is None:
        return False
    return libc.prctl(_PR_SET_NAME, os_thread_name(stage).encode(), 0, 0, 0) == 0
