"""The package's floors: each top-level module or package of ``realtime`` stands on a floor, and it
imports only what stands on a lower floor (its own files excepted). Every import counts: at the
top of a file, lazy inside a function, and under ``TYPE_CHECKING`` (each still ties the two files
together, and the next edit can move it to the top). Read with ``ast``: nothing is imported here.

A new module or package needs a line in ``FLOORS``: choosing its floor is choosing what it may
import and who may import it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# From the ground up. A unit is a module or a package directly under realtime/.
FLOORS: dict[str, int] = {
    # 1: the ground: closed choices, the exception tree, the option helper, GPU concurrency rules
    "choices": 1, "errors": 1, "options": 1, "gpu": 1,
    # 2: the configuration, the record that flows, pure functions on arrays
    "config": 2, "bundle": 2, "vision": 2,
    # 3: networks and model files; the engine (it knows nothing of faces); what an operator changes live
    "models": 3, "pipeline": 3, "live": 3,
    # 4: media in and out, generator runtimes, users' ONNX models
    "io": 4, "inference": 4, "byo": 4, "testing_onnx": 4,
    # 5: a face in a photo; generator files → specs; the run report; doctor
    "photo": 5, "generators": 5, "report": 5, "doctor": 5, "testing_masks": 5,
    # 6: the stages
    "stages": 6,
    # 7: what stands on the stages without composing a run: the panel, training, fixtures, build-engines
    "control": 7, "train": 7, "testing": 7, "engines": 7,
    # 8: composition roots: a run (app), its benchmark (bench), the stages once on a still (still)
    "app": 8, "bench": 8, "still": 8,
    # 9: evaluations (eval-swap runs the still swapper on hundreds of photos)
    "eval": 9,
    # 10: the command line; 11: python -m realtime
    "cli": 10, "__main__": 11,
}
# The package's own __init__ (a version string) imports nothing and is on no floor.
UNFLOORED = {"realtime"}


def unit_of(module: str) -> str:
    """``realtime.stages.blend.gpu`` → ``stages``; ``realtime`` → ``realtime``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def module_name(path: Path, root: Path = ROOT) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")


def imported_modules(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, module) for every ``realtime`` import anywhere in the file: top-level, in a function,
    under ``TYPE_CHECKING``; relative imports resolved against the file's package."""
    name = module_name(path, root)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            found.append((node.lineno, ".".join([*base, node.module] if node.module else base)))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return [(line, module) for line, module in found if module == "realtime" or module.startswith("realtime.")]


def import_arrows(root: Path = ROOT) -> list[tuple[str, str, str]]:
    """(importing file:line, from unit, to unit) for every import between two units."""
    arrows = []
    for path in sorted((root / "realtime").rglob("*.py")):
        source = unit_of(module_name(path, root))
        for line, module in imported_modules(path, root):
            target = unit_of(module)
            if target != source:
                arrows.append((f"{path.relative_to(root).as_posix()}:{line}", source, target))
    return arrows


def upward(arrows: list[tuple[str, str, str]], floors: dict[str, int]) -> list[str]:
    """Every arrow that does not go down a floor, said as the import that makes it (a unit on no
    floor is the first test's to report)."""
    return [
        f"{where}: {source} (floor {floors[source]}) imports {target} (floor {floors[target]})"
        for where, source, target in arrows
        if source in floors and target in floors and floors[target] >= floors[source]
    ]


def test_every_module_and_package_has_a_floor():
    units = {unit_of(module_name(path)) for path in (ROOT / "realtime").rglob("*.py")} - UNFLOORED
    missing = sorted(units - FLOORS.keys())
    assert not missing, f"give {', '.join('realtime.' + u for u in missing)} a floor in tests/test_layers.py FLOORS"


def test_no_import_runs_up_or_across_a_floor():
    assert upward(import_arrows(), FLOORS) == []


def test_the_stages_import_no_composition_root_and_the_photo_no_stage():
    """The package loop that ``still/`` made (the stages read photos from it; it ran the stages)
    cannot come back: the stages import none of the places that compose a run."""
    arrows = import_arrows()
    assert [a for a in arrows if a[1] == "stages" and a[2] in {"still", "app", "eval", "cli", "control"}] == []
    assert [a for a in arrows if a[1] == "photo" and a[2] == "stages"] == []


def test_the_floor_check_sees_an_upward_import_of_any_kind(tmp_path):
    """The check can fail: a TYPE_CHECKING import and a lazy one from a stage up to the app, a
    relative import that stays home, and an import between two packages on one floor."""
    stages = tmp_path / "realtime" / "stages"
    stages.mkdir(parents=True)
    (stages / "__init__.py").write_text("")
    (stages / "x.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from realtime.app import Plan\n"
        "def f():\n    import realtime.app\n"
        "from . import y\n"
        "from ..vision import align\n"
    )
    (stages / "y.py").write_text("from realtime.control import panel\n")
    assert upward(import_arrows(tmp_path), {**FLOORS, "control": 6}) == [
        "realtime/stages/x.py:3: stages (floor 6) imports app (floor 8)",
        "realtime/stages/x.py:5: stages (floor 6) imports app (floor 8)",
        "realtime/stages/y.py:1: stages (floor 6) imports control (floor 6)",
    ]
    assert ("realtime/stages/x.py:7", "stages", "vision") in import_arrows(tmp_path)
