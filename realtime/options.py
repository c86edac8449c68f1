"""Options that are also command-line flags: a dataclass field carries its help text (and, where
the flag differs from the field, its spelling), so each option is written once and ``cli.flags``
turns it into argparse. A field without help is a setting with no flag (a training
hyperparameter that only code changes)."""

from __future__ import annotations

import dataclasses
from typing import Any


def option(default: Any, help: str, *, metavar: str | tuple[str, ...] | None = None, flag: str | None = None, positional: bool = False) -> Any:
    """A dataclass field that also describes its command-line flag. Sequences are tuples:
    option objects are frozen or shared, and a list default would be shared between them."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for sequence defaults: configs are frozen")
    return dataclasses.field(default=default, metadata={"help": help, "metavar": metavar, "flag": flag, "positional": positional})


def required(help: str, *, metavar: str | tuple[str, ...] | None = None, flag: str | None = None) -> Any:
    """A field every command line must give (a required flag)."""
    return dataclasses.field(metadata={"help": help, "metavar": metavar, "flag": flag, "positional": False})


def is_flag(field: dataclasses.Field[Any]) -> bool:
    return "help" in field.metadata
