"""Flags from options dataclasses: one argparse flag per field, with its help, type and choices
(``add_config_arguments``), and the run-path ``Config`` back from the parsed flags and a TOML file."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from realtime.cli.common import UsageError
from realtime.config import Config, build_config, load_toml, section_types

RUN_SECTIONS = ("capture", "detect", "track", "swap", "blend", "safety", "output", "pipeline", "stats")
SWAP_IMAGE_SECTIONS = ("detect", "track", "swap", "blend")
TRACK_SECTIONS = ("capture", "detect", "track", "pipeline", "stats")


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:
        raise UsageError(message, f"see '{self.prog} --help'")


def _flag(field: dataclasses.Field[Any]) -> str:
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def add_config_arguments(parser: argparse.ArgumentParser, sections: Sequence[str]) -> None:
    """One flag per config field; defaults are suppressed so only given flags override."""
    types_by_section = section_types()
    for section in sections:
        cls = types_by_section[section]
        hints = typing.get_type_hints(cls)
        group = parser.add_argument_group(section)
        for field in dataclasses.fields(cls):
            hint = hints[field.name]
            kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "dest": field.name}
            help_text = field.metadata.get("help", "")
            default = field.default
            origin, args = typing.get_origin(hint), typing.get_args(hint)
            if origin in (typing.Union, types.UnionType):
                hint = next(a for a in args if a is not type(None))
                origin, args = typing.get_origin(hint), typing.get_args(hint)
            if hint is bool:
                kwargs["action"] = argparse.BooleanOptionalAction
            elif origin is Literal:
                kwargs["choices"] = list(args)
            elif origin is tuple:
                kwargs["action"] = "extend"  # --output a.mp4 vcam, or --output a.mp4 --output vcam
                kwargs["nargs"] = "+"
                kwargs["type"] = args[0]
            else:
                kwargs["type"] = hint
            if field.metadata.get("metavar"):
                kwargs["metavar"] = field.metadata["metavar"]
            if default not in (None, (), False) and default is not dataclasses.MISSING:
                help_text += f" (default: {default})"
            group.add_argument(_flag(field), help=help_text, **kwargs)


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML file with [capture], [output], ... sections; flags override it")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")


def config_from_args(args: argparse.Namespace, sections: Sequence[str]) -> Config:
    names = {f.name for s in sections for f in dataclasses.fields(section_types()[s])}
    overrides = {k: v for k, v in vars(args).items() if k in names}
    for name, value in overrides.items():
        if isinstance(value, list):
            overrides[name] = tuple(value)
    file_values = load_toml(args.config) if getattr(args, "config", None) else None
    return build_config(file_values, overrides)
