"""What every command shares: exit codes, the usage error, the --debug and --config flags,
logging to stderr as one-line messages."""

from __future__ import annotations

import logging
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from realtime.errors import ConfigError
from realtime.options import option

log = logging.getLogger("realtime")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(ConfigError):
    """A malformed command line (unknown option, bad value)."""


@dataclass(frozen=True)
class DebugFlag:
    debug: bool = option(False, "show tracebacks and debug logs")


@dataclass(frozen=True)
class ConfigFile:
    config: Path | None = option(None, "TOML file with [capture], [output], ... sections; flags override it")


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
