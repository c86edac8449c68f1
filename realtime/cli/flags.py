"""Flags from options dataclasses: one argparse argument per field that has help text, its type,
choices and count read from the annotation (``add_dataclass_arguments``); the dataclass back from
the parsed flags (``from_args``); and the run-path ``Config`` from flags and a TOML file."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Sequence
from typing import Any, Literal, TypeVar

from realtime.cli.common import ConfigFile, DebugFlag, UsageError
from realtime.config import Config, build_config, load_toml, section_types
from realtime.options import is_flag

T = TypeVar("T")

RUN_SECTIONS = ("capture", "detect", "track", "swap", "blend", "safety", "output", "pipeline", "stats", "control")
SWAP_IMAGE_SECTIONS = ("detect", "track", "swap", "blend")
TRACK_SECTIONS = ("capture", "detect", "track", "pipeline", "stats")


class Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # no prefixes of long flags: '--lambda-id 10' was once taken as '--lambda-id2 10', silently
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> typing.NoReturn:
        raise UsageError(message, f"see '{self.prog} --help'")


def _flag(field: dataclasses.Field[Any]) -> str:
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def _unwrap_optional(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def _argument(field: dataclasses.Field[Any], hint: Any) -> tuple[list[str], dict[str, Any]]:
    """argparse's arguments for one field: the type, choices and count follow the annotation, the
    help and its '(default: ...)' the field. Defaults are suppressed so that only given flags
    reach the namespace: the dataclass (or a TOML file under it) supplies the rest."""
    hint = _unwrap_optional(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    kwargs: dict[str, Any] = {"default": argparse.SUPPRESS}
    help_text = field.metadata["help"]
    if hint is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif origin is Literal:
        kwargs.update(choices=list(args), type=type(args[0]))
    elif origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        kwargs.update(action="extend", nargs="+", type=args[0])  # --output a.mp4 vcam, or --output a.mp4 --output vcam
        if typing.get_origin(args[0]) is Literal:
            choices = typing.get_args(args[0])
            kwargs.update(choices=list(choices), type=type(choices[0]))
    elif origin is tuple:
        kwargs.update(nargs=len(args), type=args[0])
    else:
        kwargs["type"] = hint
    if field.metadata.get("metavar"):
        kwargs["metavar"] = field.metadata["metavar"]
    required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
    if field.metadata.get("positional"):
        # argparse checks an omitted positional's default against its choices: give the real one.
        kwargs.update(nargs="?", default=field.default)
        return [field.name], {**kwargs, "help": help_text}
    if required:
        kwargs["required"] = True
    elif field.default not in (None, (), False):
        shown = " ".join(map(str, field.default)) if isinstance(field.default, tuple) else field.default
        help_text += f" (default: {shown})"
    return [_flag(field)], {**kwargs, "dest": field.name, "help": help_text}


def add_dataclass_arguments(parser: Any, cls: type, *, title: str | None = None) -> None:
    """One flag per field of ``cls`` that has help text (``realtime.options.option``)."""
    hints = typing.get_type_hints(cls)
    target = parser.add_argument_group(title) if title else parser
    for field in dataclasses.fields(cls):
        if is_flag(field):
            names, kwargs = _argument(field, hints[field.name])
            target.add_argument(*names, **kwargs)


def from_args(cls: type[T], args: argparse.Namespace, **extra: Any) -> T:
    """``cls`` from the flags given on the command line; the rest keep the dataclass's defaults."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in vars(args).items() if k in names}
    return cls(**{**values, **extra})


def add_config_arguments(parser: argparse.ArgumentParser, sections: Sequence[str]) -> None:
    """The run-path config sections, one argument group each."""
    types_by_section = section_types()
    for section in sections:
        add_dataclass_arguments(parser, types_by_section[section], title=section)


def add_common(parser: argparse.ArgumentParser) -> None:
    add_dataclass_arguments(parser, ConfigFile)
    add_dataclass_arguments(parser, DebugFlag)


def config_from_args(args: argparse.Namespace, sections: Sequence[str]) -> Config:
    names = {f.name for s in sections for f in dataclasses.fields(section_types()[s])}
    overrides = {k: v for k, v in vars(args).items() if k in names}
    for name, value in overrides.items():
        if isinstance(value, list):
            overrides[name] = tuple(value)
    file_values = load_toml(args.config) if getattr(args, "config", None) else None
    return build_config(file_values, overrides)
