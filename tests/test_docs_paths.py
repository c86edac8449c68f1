"""Every ``bench/...`` and ``docs/results/...`` path the documentation names exists, so a moved
script or result takes its references with it. Wildcards (``group-*.jpg``) must match a file;
results taken out of the tree are allowed when ``docs/results/ARCHIVE.md`` lists them."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "models").glob("*.md"))]
# a path starts at a word boundary: not `.baseline/bench/...` or `$base/bench/...`
PATH = re.compile(r"(?<![\w./$-])((?:bench|docs/results)/[\w.\-/*]+)")


def named_paths(text: str) -> set[str]:
    return {m.group(1).rstrip(".,;:)") for m in PATH.finditer(text)}


def exists(path: str) -> bool:
    return any(ROOT.glob(path)) if "*" in path else (ROOT / path).exists()


def test_the_path_pattern_reads_paths_in_prose_and_commands():
    text = "run `bench/gpu/check.sh OUTDIR` (see docs/results/x/y.json), not .baseline/bench/old.py."
    assert named_paths(text) == {"bench/gpu/check.sh", "docs/results/x/y.json"}


def test_every_bench_and_results_path_in_the_docs_exists():
    archived = named_paths((ROOT / "docs" / "results" / "ARCHIVE.md").read_text())
    missing = [f"{doc.relative_to(ROOT)}: {path}" for doc in DOCS for path in sorted(named_paths(doc.read_text())) if not exists(path) and path not in archived]
    assert not missing, "\n".join(missing)
