"""What each hyperparameter of a network may be: every network file names its own (``HYPERPARAMETERS``
beside its class), and a checkpoint's metadata is checked against them before anything is built,
because a module is built from those numbers: ``gen_width = 1000000`` in a file is gigabytes of
layers. The ranges are wide (far beyond any model trained here) but finite; ``checkpoint`` then
also checks the module those numbers describe against the tensors the file stores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Whole:
    """A whole number from ``low`` to ``high``, both included."""

    low: int
    high: int

    def problem(self, value: Any) -> str | None:
        return None if _whole(value) and self.low <= value <= self.high else f"is not a whole number from {self.low} to {self.high}"


@dataclass(frozen=True)
class OneOf:
    choices: tuple[int, ...]

    def problem(self, value: Any) -> str | None:
        return None if _whole(value) and value in self.choices else f"is not one of {', '.join(map(str, self.choices))}"


@dataclass(frozen=True)
class Real:
    """A number above ``low`` and at most ``high``."""

    low: float
    high: float

    def problem(self, value: Any) -> str | None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and self.low < value <= self.high
        return None if ok else f"is not a number above {self.low} and at most {self.high}"


@dataclass(frozen=True)
class Size:
    """(height, width), each a multiple of ``multiple`` from ``low`` to ``high``."""

    low: int
    high: int
    multiple: int

    def problem(self, value: Any) -> str | None:
        ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(_whole(v) and self.low <= v <= self.high and v % self.multiple == 0 for v in value)
        return None if ok else f"is not two multiples of {self.multiple} from {self.low} to {self.high}"


Rule = Whole | OneOf | Real | Size


def hyperparameter_problem(rules: dict[str, Rule], values: dict[str, Any]) -> str | None:
    """What is wrong with ``values`` under ``rules`` (a name no rule knows, or a value out of its
    range), or None."""
    for name, value in values.items():
        rule = rules.get(name)
        if rule is None:
            return f"hyperparameter {name!r} is not one of {', '.join(rules)}"
        problem = rule.problem(value)
        if problem:
            return f"hyperparameters.{name} {str(value)[:40]} {problem}"
    return None
