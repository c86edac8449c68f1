"""Every hint in realtime/ that tells the user to run a ``realtime ...`` command is a command that
the real argument parser (``realtime.cli.make_parser``) accepts: the command exists, every flag it
names exists, and each literal value is one the flag takes. Placeholders (``…``, ``<the file>``,
``DATASET``, an f-string's ``{field}``) stand for a value of the right kind. A flag the hint leaves
out is not an error: a hint may show only the part that matters (``--kinds compiled``)."""

from __future__ import annotations

import argparse
import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import realtime
from realtime.cli import make_parser
from realtime.cli.common import UsageError

PACKAGE = Path(realtime.__file__).parent
# Words after "realtime " that look like a command (hyphenated) but are prose: the stand-in
# models' producer name. Anything else hyphenated is taken for a command and must parse.
NOT_COMMANDS = {"stand-in"}
FORMATTED = "\x00"  # where an f-string's {field} was: a placeholder
MENTION = re.compile(r"(?<![\w.=/-])(?P<quote>['`]?)realtime (?P<commands>[a-z][a-z0-9-]*(?:/[a-z][a-z0-9-]*)*)")
TOKEN = re.compile(r"<[^>]*>|\S+")


@dataclass(frozen=True)
class Hint:
    where: str  # file:line
    command: str
    words: tuple[str, ...]  # what follows the command, up to where the hint ends
    quoted: bool


def message_strings(source: str) -> list[tuple[int, str]]:
    """Every string literal of ``source`` but docstrings, f-strings with their fields as
    ``FORMATTED``: the text a user can be shown."""
    tree = ast.parse(source)
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skip.add(id(first.value))
        if isinstance(node, ast.JoinedStr):
            skip.update(id(v) for v in node.values)
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append((node.lineno, node.value))
        elif isinstance(node, ast.JoinedStr):
            found.append((node.lineno, "".join(v.value if isinstance(v, ast.Constant) else FORMATTED for v in node.values)))
    return found


def hints_in(text: str, where: str, commands: set[str]) -> list[Hint]:
    """The ``realtime <command> ...`` hints in one message: a known command, or any hyphenated
    word or quoted mention (so that a misspelt or removed command is caught too)."""
    hints = []
    matches = list(MENTION.finditer(text))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        quote, rest = match["quote"], text[match.end() : end].split("\n")[0]
        quoted = bool(quote)
        if quoted and quote in rest:
            rest = rest[: rest.index(quote)]
        for command in match["commands"].split("/"):
            if command in commands or quoted or ("-" in command and command not in NOT_COMMANDS):
                hints.append(Hint(where, command, tuple(TOKEN.findall(rest)), quoted))
    return hints


def all_hints() -> list[Hint]:
    commands = set(_subparsers(make_parser()))
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for line, text in message_strings(path.read_text()):
            found += hints_in(text, f"{path.relative_to(PACKAGE.parent)}:{line}", commands)
    return found


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _is_placeholder(word: str) -> bool:
    return FORMATTED in word or word in ("…", "...") or word.startswith("<") or bool(re.fullmatch(r"[A-Z][A-Z0-9_.]*", word))


def _value_for(word: str, action: argparse.Action) -> str:
    if not _is_placeholder(word):
        return word
    if action.choices:
        return str(next(iter(action.choices)))
    return "1" if action.type in (int, float) else "placeholder"


def argv_of(hint: Hint, parser: argparse.ArgumentParser) -> list[str]:
    """The hint as arguments for ``parser`` (the command's own): flags with their values, up to
    where an unquoted hint turns back into prose (a word that is neither a flag nor a flag's value,
    or trailing punctuation)."""
    by_flag = {flag: action for action in parser._actions for flag in action.option_strings}
    argv: list[str] = []
    taking: argparse.Action | None = None
    left = 0  # values the flag still takes (-1: any number)
    for raw in hint.words:
        word = raw if hint.quoted else raw.rstrip("),;.'\"")
        ends = word != raw
        if word.startswith("(") or not word:
            break
        if word.startswith("-") and not _is_placeholder(word):
            argv.append(word)
            taking = by_flag.get(word)
            nargs = taking.nargs if taking is not None else 0
            left = 0 if nargs == 0 else 1 if nargs in (None, "?") else nargs if isinstance(nargs, int) else -1
        elif taking is not None and left != 0:
            argv.append(_value_for(word, taking))
            left -= 1 if left > 0 else 0
        elif hint.quoted:
            argv.append(word)  # a positional, inside quotes: part of the command
        else:
            break
        if ends:
            break
    return argv


def parse_hint(hint: Hint) -> str | None:
    """None when the real parser accepts the hint (flags the hint leaves out not required), else
    the parser's complaint."""
    parser = make_parser()
    sub = _subparsers(parser).get(hint.command)
    if sub is None:
        return f"there is no command 'realtime {hint.command}'"
    argv = argv_of(hint, sub)
    for action in sub._actions:
        action.required = False
    try:
        parser.parse_args([hint.command, *argv])
    except (UsageError, SystemExit) as exc:
        return f"'realtime {hint.command} {' '.join(argv)}': {exc}"
    return None


def test_the_extractor_finds_hints_and_leaves_prose_alone():
    commands = set(_subparsers(make_parser()))
    text = "none built (realtime build-engines --checkpoint …); realtime does not run it; see 'realtime doctor' or realtime bulid-engines"
    hints = hints_in(text, "x", commands)
    assert [(h.command, h.words[:2]) for h in hints][:2] == [("build-engines", ("--checkpoint", "…);")), ("doctor", ())]
    assert [h.command for h in hints] == ["build-engines", "doctor", "bulid-engines"]
    assert hints_in("card_label=realtime exclusive_caps=1; the realtime stand-in; realtime run report", "x", commands)[0].words == ("report",)
    fstring = message_strings('f"realtime build-engines --generator <the {spec.architecture} file> --batch {batch}"')
    assert hints_in(fstring[0][1], "x", commands)[0].words == ("--generator", f"<the {FORMATTED} file>", "--batch", FORMATTED)
    assert message_strings('def f():\n    """realtime nonsense-cmd"""\n') == []  # docstrings are not hints


@pytest.mark.parametrize(("text", "problem"), [
    ("run realtime build-engines --checkpoint … first", "unrecognized arguments: --checkpoint"),  # the hint doctor once gave
    ("run 'realtime build-engine'", "there is no command 'realtime build-engine'"),
    ("realtime build-engines --kinds turbo", "invalid choice: 'turbo'"),
    ("realtime bench --frames many", "invalid int value: 'many'"),
])
def test_a_wrong_hint_is_reported_with_the_parsers_complaint(text, problem):
    commands = set(_subparsers(make_parser()))
    (hint,) = hints_in(text, "x", commands)
    assert problem in (parse_hint(hint) or "")


def test_right_hints_parse():
    commands = set(_subparsers(make_parser()))
    for text in ("realtime build-engines --generator <the aei_net file> --batch 1", "make one with: realtime prepare-faces --input … --output DATASET", "'realtime doctor'"):
        (hint,) = hints_in(text, "x", commands)
        assert parse_hint(hint) is None, text


def test_every_realtime_command_hint_in_the_code_parses():
    hints = all_hints()
    assert len(hints) >= 8 and {h.command for h in hints} >= {"build-engines", "doctor"}  # the extractor sees them
    problems = [f"{h.where}: {problem}" for h in hints if (problem := parse_hint(h))]
    assert not problems, "\n".join(problems)
