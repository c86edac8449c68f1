"""What every command shares: exit codes, the usage error, logging to stderr as one-line messages."""

from __future__ import annotations

import logging
import signal
import sys
from typing import Any

from realtime.errors import ConfigError

log = logging.getLogger("realtime")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(ConfigError):
    """A malformed command line (unknown option, bad value)."""


def exit_code_of(result: Any) -> int:
    """0, or 128 + the signal that stopped the run."""
    if result is None or not result.interrupted:
        return EXIT_OK
    return 128 + (result.signal or signal.SIGINT)


def setup_logging(debug: bool, quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("realtime: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)
    log.propagate = False
