"""The run report is written at the stop, inside the stop's one-second budget (issue 32 #13): a run
stopped by a signal writes its JSON and summary and leaves the plots to a process of its own, and
the plots are a few artists, not one per bar or per box."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_a_report_of_a_run_without_frames_still_plots(tmp_path):
    from realtime.report import write_report

    report = _real_report(0)
    write_report(report, tmp_path / "r.json")
    assert (tmp_path / "r.png").stat().st_size > 1000


def _wait_for(path, timeout_s: float = 120.0) -> bool:
    """A file another process makes: polled, with a bound no loaded machine reaches."""
    import time

    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_stopped_runs_report_is_written_without_plotting_and_its_plots_follow(tmp_path):
    """A run stopped by a signal writes its JSON and summary and leaves the plots (seconds of
    drawing on a busy machine, more than the stop's second) to a process of its own. A fresh
    process: this one may have loaded matplotlib already."""
    report = _real_report(40) | {"interrupted": True}
    data = tmp_path / "in.json"
    data.write_text(json.dumps(report))
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from realtime.report import write_report\n"
        "write_report(json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]))\n"
        "print('matplotlib' in sys.modules)\n"
    )
    out = tmp_path / "r.json"
    done = subprocess.run([sys.executable, "-c", code, str(data), str(out)], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"  # nothing was drawn in the stopping process
    assert json.loads(out.read_text())["interrupted"] is True and "frames: 40 done" in out.with_suffix(".md").read_text()
    assert _wait_for(out.with_suffix(".png")) and out.with_suffix(".png").stat().st_size > 1000


def test_the_plotting_process_says_in_one_line_and_in_the_summary_what_it_could_not_draw(tmp_path, capsys):
    from realtime.report import main as plot_main

    bad = tmp_path / "r.json"
    bad.write_text("{not json")
    bad.with_suffix(".md").write_text("# realtime run report\n")
    assert plot_main([str(bad), str(tmp_path / "r.png")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    said = f"could not draw {tmp_path / 'r.png'} from {bad}"
    assert len(err) == 1 and err[0].startswith(f"realtime: error: {said}")
    assert f"- plots: {said}" in bad.with_suffix(".md").read_text()  # its stderr goes nowhere when a stopped run started it
    assert not (tmp_path / "r.png").exists()


def test_ctrl_c_with_a_report_writes_it_before_the_process_ends_and_the_plots_follow(tmp_path):
    """The whole command: the report and summary exist when the process has ended, the plots a
    moment later (a generous bound: only the mechanism is tested here, not the stop's time)."""
    report = tmp_path / "live.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "realtime", "run", "--input", "demo", "--loop", "--pace", "native", "--no-faces", "--output", "null", "--report", str(report), "--stats"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        for line in proc.stderr:  # type: ignore[union-attr]
            if " fps | " in line:  # frames flow
                break
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()  # type: ignore[union-attr]
        assert proc.wait(timeout=60) == 130, rest
    finally:
        proc.kill()
    assert json.loads(report.read_text())["interrupted"] is True and report.with_suffix(".md").exists()
    assert "plots" in rest and "follow in a moment" in rest
    assert _wait_for(report.with_suffix(".png"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads /proc (Linux)")
def test_the_plotting_process_holds_none_of_the_runs_streams_and_has_a_session_of_its_own(tmp_path):
    """Else a pipe reading the run's output (``realtime run ... | tee log``, a supervisor) would wait
    for the plots too, and the Ctrl-C that stopped the run would stop the drawing with it. The
    report path is a FIFO, so the process waits on it while it is looked at."""
    from realtime.report import plot_later

    fifo = tmp_path / "r.json"
    os.mkfifo(fifo)
    proc = plot_later(fifo, tmp_path / "r.png")
    try:
        assert os.getsid(proc.pid) == proc.pid != os.getsid(0)
        assert [os.readlink(f"/proc/{proc.pid}/fd/{fd}") for fd in (0, 1, 2)] == [os.devnull] * 3
        with fifo.open("w") as writer:  # the process reads the report from here, then draws
            writer.write(json.dumps(_real_report(40)))
        assert proc.wait(timeout=300) == 0
    finally:
        proc.kill()
    assert (tmp_path / "r.png").stat().st_size > 1000
