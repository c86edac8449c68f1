"""The command line: the only place that parses flags, prints for humans and chooses exit codes.

Flags are generated from the config dataclasses (``realtime.config``), so each option is defined
once. Errors print as one line, ``realtime: error: <problem>: <fix>``, with a traceback only under
``--debug``. Exit codes: 0 done, 1 failed while running, 2 bad usage or input, 128 + the signal
when stopped by one (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP: what supervisors expect).
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

# Light imports only (the standard library and modules built on it): ``entry_point`` installs the
# stop-signal handlers before the commands, their flags and their libraries are imported.
from realtime import __version__
from realtime.cli.common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UsageError, exit_code_of
from realtime.errors import ConfigError, RealtimeError
from realtime.pipeline.signals import STOP_SIGNALS

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "COMMANDS", "UsageError", "entry_point", "exit_code_of", "main", "make_parser"]

log = logging.getLogger("realtime")


class SignalExit(KeyboardInterrupt):
    """A stop signal that arrived outside a running pipeline (during set-up, say)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def make_parser() -> argparse.ArgumentParser:
    from realtime.cli import live, offline
    from realtime.cli.flags import Parser

    parser = Parser(prog="realtime", description="Real-time face swap for a live webcam.")
    parser.add_argument("--version", action="version", version=f"realtime {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    live.add_parsers(commands)
    offline.add_parsers(commands)
    return parser


def _commands() -> dict[str, Any]:
    """Every command's function by name (``COMMANDS``), built at first use, then the same dict."""
    commands = globals().get("COMMANDS")
    if commands is None:
        from realtime.cli import live, offline

        commands = globals()["COMMANDS"] = {**live.COMMANDS, **offline.COMMANDS}
    return commands  # type: ignore[no-any-return]


def __getattr__(name: str) -> Any:
    if name == "COMMANDS":  # imported lazily: see the note on the imports above
        return _commands()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_STACKS_FILE: Any = None  # kept open for faulthandler


def _enable_crash_stacks() -> None:
    """A crash inside native code (CUDA, mediapipe, FFmpeg) otherwise dies without a word: print
    every thread's Python stack first, and on SIGUSR1 without stopping (``kill -USR1 PID`` shows
    where a stuck pipeline waits). Written to a copy of stderr taken now, because the landmarker's
    start silences file descriptor 2 for a moment: a dump at that moment would be lost."""
    global _STACKS_FILE
    if _STACKS_FILE is None:
        try:
            _STACKS_FILE = os.fdopen(os.dup(sys.stderr.fileno()), "w")
        except (OSError, ValueError, AttributeError):  # no real stderr (embedded; tests capture it)
            return
    faulthandler.enable(file=_STACKS_FILE, all_threads=True)
    if hasattr(signal, "SIGUSR1") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGUSR1, _dump_named_stacks)


def _dump_named_stacks(_signum: int, _frame: Any) -> None:
    try:
        from realtime.pipeline.slow_stacks import named_stacks

        _STACKS_FILE.write(named_stacks() + "\n")
        _STACKS_FILE.flush()
    except (OSError, ValueError, AttributeError):
        pass


def _raise_stop(signum: int, _frame: Any) -> None:
    raise SignalExit(signum)


def _install_stop_handlers() -> dict[int, Any]:
    """Before anything opens, a stop signal becomes an exception that unwinds set-up and closes
    what was opened (the default action would kill the process and leave partial files). The
    running pipeline installs its own handlers, which turn a signal into a clean stop."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, _raise_stop) for sig in STOP_SIGNALS}


def _interrupted(interrupt: KeyboardInterrupt) -> int:
    """One line saying which signal stopped the process; its exit code, 128 + the signal."""
    signum = interrupt.signum if isinstance(interrupt, SignalExit) else signal.SIGINT
    print(f"realtime: interrupted ({signal.Signals(signum).name})", file=sys.stderr)
    return 128 + signum


def entry_point() -> None:
    """The console script and ``python -m realtime``: ``main``, then exit. After a stall the stuck
    thread still holds the GPU (or a device) and will not return; Python's normal exit would wait
    for it for ever (finalizers that free GPU memory need the stuck device), so the process
    ends at once instead: its outputs are closed and its report written by then."""
    # First of all: a SIGTERM while the commands and their libraries are still being imported
    # (a second or more on a loaded machine) exits with 143 like any other stop, not by the
    # default action (-15, nothing said).
    _install_stop_handlers()
    try:
        code = main()
    except KeyboardInterrupt as interrupt:  # a signal between here and main's own handling
        code = _interrupted(interrupt)
    # Outputs are closed and the report written by now: exit without Python's final collection
    # of every object (4-12 s after a run that loaded torch, which a Ctrl-C should not wait for).
    # After a stall the stuck thread would also keep a normal exit waiting for ever.
    try:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    except KeyboardInterrupt:  # a second stop while exiting: exit all the same
        pass
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    _enable_crash_stacks()
    previous_handlers = _install_stop_handlers()
    try:
        args, unknown = make_parser().parse_known_args(argv)
        if unknown:
            raise UsageError(f"unrecognized arguments: {' '.join(unknown)}", f"see 'realtime {args.command} --help'")
        return _commands()[args.command](args)  # type: ignore[no-any-return]
    except KeyboardInterrupt as interrupt:
        return _interrupted(interrupt)
    except RealtimeError as error:
        if debug:
            log.exception("details")
        print(f"realtime: error: {error}", file=sys.stderr)
        return EXIT_USAGE if isinstance(error, ConfigError) else EXIT_FAILED
    except Exception as error:  # noqa: BLE001 - last resort: still one line, unless --debug
        if debug:
            raise
        print(f"realtime: error: unexpected {type(error).__name__}: {error}: rerun with --debug and report it", file=sys.stderr)
        return EXIT_FAILED
    finally:
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)

