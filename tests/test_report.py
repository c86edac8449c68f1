"""The run report is written at the stop, inside the stop's one-second budget (issue 32 #13): the
plotting library is loaded at start-up, not at the stop, and the plots are a few artists, not one
per bar or per box."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from realtime.cli import main
from realtime.pipeline.pipeline import Pipeline
from realtime.report import report_figure
from realtime.stages.capture import CaptureStage
from realtime.testing import CollectingSink, PassThroughStage, SyntheticSource


def _real_report(frames: int) -> dict:
    """A report as a run writes it: four stages, two outputs, every frame timed."""
    stages = [PassThroughStage(name) for name in ("detect", "track", "swap", "blend")]
    pipeline = Pipeline(CaptureStage(SyntheticSource(frames), paced=False), stages, [CollectingSink("a"), CollectingSink("b")], policy="block")
    pipeline.run()
    return pipeline.stats.report({"realtime_version": "test", "input": {"description": "synthetic"}, "device": {"machine": "test"}})


@pytest.mark.parametrize("frames", [40, 300])
def test_the_timeline_and_the_histogram_are_one_artist_each_however_long_the_run(frames):
    """An artist per box of the timeline (frames × stages × 2) and per histogram bar took seconds
    to build and draw at the stop."""
    report = _real_report(frames)
    assert len(report["timeline"]) >= 30 and len(report["latency_histogram_ms"]) > 1
    ax_hist, ax_stage, ax_time = report_figure(report).axes
    assert len(ax_time.patches) == 0 and len(ax_time.collections) == 1
    assert len(ax_time.collections[0].get_paths()) == 30 * (2 * 5 + 1)  # the last 30 frames: wait and work per stage, and the output
    assert len(ax_hist.patches) == 1
    rows = 2 * (5 + 2)  # wait and work of 5 stages and 2 outputs
    assert len(ax_stage.patches) <= 2 * rows  # p50 and p95 per row: they do not grow with the run


def test_after_prepare_plotting_writing_a_report_loads_nothing_more(tmp_path):
    """The import and the first draw's lazy loading (seconds on a busy machine) happen on the
    thread ``prepare_plotting`` starts, not in ``write_report`` at the stop. A fresh process:
    this one may have loaded matplotlib already."""
    data = tmp_path / "in.json"
    data.write_text(json.dumps(_real_report(40)))
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from realtime.report import prepare_plotting, write_report\n"
        "report = json.loads(Path(sys.argv[1]).read_text())\n"
        "prepare_plotting().join()\n"
        "before = set(sys.modules)\n"
        "write_report(report, Path(sys.argv[2]))\n"
        "print(sorted(set(sys.modules) - before))\n"
    )
    out = tmp_path / "r.json"
    done = subprocess.run([sys.executable, "-c", code, str(data), str(out)], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert out.with_suffix(".png").stat().st_size > 1000 and "frames: 40 done" in out.with_suffix(".md").read_text()


@pytest.mark.parametrize("report", [True, False])
def test_a_run_loads_the_plotting_library_before_it_starts_only_when_it_writes_a_report(tmp_path, monkeypatch, report):
    import realtime.app as app
    import realtime.report as report_module

    calls: list[str] = []
    monkeypatch.setattr(report_module, "prepare_plotting", lambda: calls.append("prepare plotting"))

    def run(config, *args, **kwargs):
        calls.append("run")
        return None, {}

    monkeypatch.setattr(app, "run", run)
    flags = ["--report", str(tmp_path / "r.json")] if report else []
    assert main(["run", "--input", "demo", "--output", "null", "--quiet", *flags]) == 0
    assert calls == (["prepare plotting", "run"] if report else ["run"])


def test_a_report_of_a_run_without_frames_still_plots(tmp_path):
    from realtime.report import write_report

    report = _real_report(0)
    write_report(report, tmp_path / "r.json")
    assert (tmp_path / "r.png").stat().st_size > 1000
