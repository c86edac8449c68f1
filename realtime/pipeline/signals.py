"""The signals that mean "stop cleanly": Ctrl-C, a supervisor's stop, a closed terminal or a dropped
SSH session. A module of its own, standard library only, so the command line can catch them before
it imports anything heavy (a signal in those first seconds would otherwise kill the process)."""

from __future__ import annotations

import signal

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
