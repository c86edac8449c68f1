"""Options that are also command-line flags: a dataclass field carries its help text (and, where
the flag differs from the field, its spelling), so each option is written once and ``cli.flags``
turns it into argparse. A field without help is a setting with no flag (a training
hyperparameter that only code changes). ``live=True`` marks an option an operator may change while
frames flow (``realtime.live.LiveSettings``: the control panel and the controls file)."""

from __future__ import annotations

import dataclasses
from typing import Any


def option(default: Any, help: str, *, metavar: str | tuple[str, ...] | None = None, flag: str | None = None, positional: bool = False, live: bool = False) -> Any:
    """A dataclass field that also describes its command-line flag. Sequences are tuples:
    option objects are frozen or shared, and a list default would be shared between them.
    ``live``: the option may change while frames flow (validated by its section's ``__post_init__``)."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for sequence defaults: configs are frozen")
    return dataclasses.field(default=default, metadata={"help": help, "metavar": metavar, "flag": flag, "positional": positional, "live": live})


def required(help: str, *, metavar: str | tuple[str, ...] | None = None, flag: str | None = None) -> Any:
    """A field every command line must give (a required flag)."""
    return dataclasses.field(metadata={"help": help, "metavar": metavar, "flag": flag, "positional": False})


def is_flag(field: dataclasses.Field[Any]) -> bool:
    return "help" in field.metadata


def live_fields(cls: type) -> tuple[str, ...]:
    """The names of ``cls``'s options marked ``live=True``, in field order."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("live", False))
