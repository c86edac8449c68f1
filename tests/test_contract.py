"""The stages' contract with the frame record: what each declares it reads and writes exists on the
record, and every read of the wired pipeline is written upstream (or by the engine)."""

import dataclasses
from pathlib import Path

import pytest

from realtime.app import Plan, face_stages
from realtime.bundle import Face, FrameBundle
from realtime.config import build_config
from realtime.pipeline.stage import ENGINE_WRITES
from realtime.stages.capture import CaptureStage

MODELS = Path(__file__).resolve().parents[1] / "models"


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def unwritten_reads(stages) -> list[tuple[str, str]]:
    """(stage, field) for every read that no earlier stage, the capture or the engine writes."""
    written = set(CaptureStage.writes) | set(ENGINE_WRITES)
    missing = []
    for stage in stages:
        missing += [(stage.name, field) for field in stage.reads if field not in written]
        written |= set(stage.writes)
    return missing


@pytest.mark.parametrize("live", [False, True])
def test_every_read_of_the_wired_stages_is_written_upstream(live):
    config = build_config(overrides={"generator": str(MODELS / "aei-net-v2.safetensors"), "identity_encoder": str(MODELS / "identity-encoder-v1.safetensors"), "source": "demo", "blend_device": "cpu"})
    plan = Plan(paced=live, policy="latest_wins" if live else "block", sink_policies=("block",))
    stages = face_stages(config, plan)
    assert [s.name for s in stages] == ["detect", "track", "swap", "blend"]
    assert unwritten_reads(stages) == []


def test_every_declared_field_is_on_the_record():
    config = build_config(overrides={"generator": str(MODELS / "aei-net-v2.safetensors"), "identity_encoder": str(MODELS / "identity-encoder-v1.safetensors"), "source": "demo", "blend_device": "cpu"})
    stages = [CaptureStage, *face_stages(config, Plan(paced=False, policy="block", sink_policies=("block",)))]
    bundle_fields, face_fields = _fields(FrameBundle), _fields(Face)
    for stage in stages:
        for field in (*stage.reads, *stage.writes):
            if field.startswith("faces."):
                assert field.removeprefix("faces.") in face_fields, f"{stage.name}: Face has no {field}"
            else:
                assert field in bundle_fields, f"{stage.name}: FrameBundle has no {field}"


def test_a_stage_that_reads_what_nobody_wrote_is_caught():
    """The check itself can fail: wired in the wrong order, the blend reads crops nobody made yet."""
    config = build_config(overrides={"generator": str(MODELS / "aei-net-v2.safetensors"), "identity_encoder": str(MODELS / "identity-encoder-v1.safetensors"), "source": "demo", "blend_device": "cpu"})
    detect, track, swap, blend = face_stages(config, Plan(paced=False, policy="block", sink_policies=("block",)))
    assert ("blend", "faces.swapped") in unwritten_reads([detect, track, blend, swap])
    assert ("track", "detections") in unwritten_reads([track, detect])


def test_the_engine_and_the_generator_runtime_import_nothing_of_the_gpu_or_the_blend():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import realtime.pipeline.pipeline, realtime.pipeline.stats, realtime.inference.select, realtime.inference.build, realtime.inference.manifest\n"
        "print(sorted(m for m in sys.modules if m.startswith(('realtime.gpu', 'realtime.stages'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"


def test_vision_is_pure_functions_that_import_neither_the_record_nor_the_config():
    import ast

    vision = Path(__file__).resolve().parents[1] / "realtime" / "vision"
    for path in vision.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module not in ("realtime.bundle", "realtime.config"), f"{path.name} imports {node.module}"


def _import_graph() -> dict[str, set[str]]:
    """realtime's modules and the realtime modules each imports anywhere in it (a lazy import
    inside a function counts: it still ties the two files together)."""
    import ast

    root = Path(__file__).resolve().parents[1]
    modules = {".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): p for p in (root / "realtime").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("realtime"):
                targets |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names}
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.startswith("realtime")}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_only_import_cycle_is_the_demo_clip_and_its_source():
    assert _cycles(_import_graph()) == [{"realtime.io.demo", "realtime.io.sources"}]


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
