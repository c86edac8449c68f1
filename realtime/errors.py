"""One exception tree for the whole package.

Every error carries a *problem* and a *fix*; ``str(error)`` is one line that names both, which is
exactly what ``cli.py`` prints. Each class also subclasses the matching builtin so callers that
only know Python's own exceptions still catch them sensibly.
"""

from __future__ import annotations


class RealtimeError(Exception):
    """Base of every error the package raises on purpose."""

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem}: {fix}" if fix else problem)


class ConfigError(RealtimeError, ValueError):
    """An option, a config file or a combination of options is invalid."""


class SourceError(RealtimeError, OSError):
    """The input (file, camera, URL) cannot be opened or read."""


class SinkError(RealtimeError, OSError):
    """An output (file, stream, virtual camera) cannot be opened or written."""


class VirtualCameraError(SinkError):
    """No usable virtual camera device exists."""


class StageError(RealtimeError, RuntimeError):
    """A stage failed to start, or failed so often that the failure policy stopped the run."""


class StallError(StageError):
    """No frame came out for too long: a thread is stuck (in the GPU, say), and will not
    return. The process must exit without waiting for it (``cli.entry_point``)."""


class ModelError(RealtimeError, ValueError):
    """A model or engine file is missing, corrupt or does not match what the code expects."""
