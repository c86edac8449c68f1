"""Flags from dataclasses: every flag of every command is one field, its default and help come from
the field, and a bad value is a usage error (exit 2) before anything opens."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from realtime.cli import COMMANDS, main, make_parser
from realtime.cli import live as live_cli
from realtime.cli import offline as offline_cli
from realtime.cli.flags import add_dataclass_arguments, from_args
from realtime.config import section_types
from realtime.options import option, required


@dataclass(frozen=True)
class Example:
    name: Path = required("a required path")
    paths: tuple[Path, ...] = option((), "any number of paths")
    pair: tuple[Path, Path] | None = option(None, "exactly two", metavar=("A", "B"))
    size: Literal[128, 256] = option(128, "an int choice")
    modes: tuple[Literal["a", "b"], ...] | None = option(None, "choices, several")
    on: bool = option(True, "a switch")
    rate: float = option(0.5, "a float")
    hidden: int = 7  # no help: a setting without a flag


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, Example)
    return parser.parse_args(argv)


def test_each_annotation_becomes_the_matching_flag():
    args = _parse(["--name", "n", "--paths", "a", "b", "--paths", "c", "--pair", "x", "y", "--size", "256", "--modes", "a", "b", "--no-on", "--rate", "2"])
    got = from_args(Example, args)
    assert got == Example(Path("n"), (Path("a"), Path("b"), Path("c")), (Path("x"), Path("y")), 256, ("a", "b"), False, 2.0)


def test_omitted_flags_keep_the_dataclass_defaults_and_fields_without_help_are_not_flags():
    args = _parse(["--name", "n"])
    assert vars(args) == {"name": Path("n")}
    assert from_args(Example, args) == Example(Path("n"))
    with pytest.raises(SystemExit):
        _parse(["--name", "n", "--hidden", "3"])


@pytest.mark.parametrize("argv", [[], ["--name", "n", "--size", "64"], ["--name", "n", "--modes", "c"], ["--name", "n", "--pair", "x"]])
def test_a_missing_required_flag_or_a_bad_value_is_refused(argv):
    with pytest.raises(SystemExit):
        _parse(argv)


def test_help_shows_the_dataclass_default():
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, Example)
    text = parser.format_help()
    assert "a float (default: 0.5)" in text and "an int choice (default: 128)" in text


def _command_fields() -> dict[str, set[str]]:
    """Every field each command's flags may come from: its dataclasses and its config sections."""
    fields: dict[str, set[str]] = {}
    for name, (_, option_types, sections) in live_cli.COMMAND_FLAGS.items():
        types_ = [*option_types, *(section_types()[s] for s in sections)]
        fields[name] = {f.name for t in types_ for f in dataclasses.fields(t)}
    for name, option_types in offline_cli.FLAGS.items():
        fields[name] = {f.name for t in option_types for f in dataclasses.fields(t)}
    return fields


def test_every_flag_of_every_command_is_one_dataclass_field():
    subparsers = next(a for a in make_parser()._actions if isinstance(a, argparse._SubParsersAction))
    fields = _command_fields()
    assert set(subparsers.choices) == set(COMMANDS) == set(fields)
    for command, parser in subparsers.choices.items():
        dests = [a.dest for a in parser._actions if not isinstance(a, argparse._HelpAction)]
        assert dests, command
        stray = [d for d in dests if d not in fields[command]]
        assert not stray, f"{command}: flags not from a dataclass field: {stray}"
        assert len(dests) == len(set(dests)), f"{command}: two flags share a destination"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["build-engines", "--generator", "x.safetensors", "--batch", "0"], "--batch values must be between 1 and 64"),
        (["build-engines", "--generator", "x.safetensors", "--kinds", "magic"], "invalid choice: 'magic'"),
        (["train-aei", "--faces", "f", "--identity-encoder", "e", "--output", "o", "--batch", "1"], "--batch 1 is too small"),
        (["train-aei", "--faces", "f", "--identity-encoder", "e", "--output", "o", "--crop-size", "192"], "invalid choice: 192"),
        (["train-target", "--target", "t", "--faces", "f", "--output", "o", "--part-mib", "0"], "--part-mib 0 is too small"),
        (["prepare-faces", "--input", "i", "--output", "o", "--video-stride", "0"], "--video-stride 0 is too small"),
        (["prepare-faces", "--input", "i", "--output", "o", "--crop-size", "100"], "--crop-size 100 is not supported"),
        (["eval-identity", "--faces", "f", "--json", "r.json"], "nothing to evaluate"),
        (["eval-swap", "--faces", "f", "--generator", "g", "--identity-encoder", "e", "--json", "r.json", "--identities", "1"], "--identities 1 is too small"),
        (["run", "--input", "demo", "--output", "null", "--backends", "bogus"], "unknown generator backend 'bogus'"),
        # a prefix of a longer flag is not that flag: this one once set --lambda-id2 without a word
        (["train-aei", "--faces", "f", "--identity-encoder", "e", "--output", "o", "--lambda-id", "10"], "unrecognized arguments: --lambda-id"),
        (["run", "--input", "demo", "--output", "null", "--stead", "0.5"], "unrecognized arguments: --stead"),
    ],
)
def test_bad_offline_values_are_usage_errors_before_anything_opens(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_build_engines_script_is_the_same_command():
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(root / "build_engines.py"), "--generator", "x.safetensors", "--batch", "99"], capture_output=True, text=True, timeout=60, check=False, cwd=root)
    assert done.returncode == 2 and "--batch values must be between 1 and 64" in done.stderr
