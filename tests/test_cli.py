"""Every bad input through the CLI: one line naming the problem and the fix, non-zero exit,
no traceback, and no half-written output under the requested name."""

import errno
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import av
import pytest

from realtime.cli import main
from realtime.io.sources import InputSpec, PyAVSource
from realtime.testing import make_test_video


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("realtime: error:")]
    assert len(errors) == 1, err
    assert not any("Traceback" in line for line in err)
    return errors[0]


def test_run_file_to_file_with_report(tmp_path: Path, capsys):
    clip = make_test_video(tmp_path / "in.mp4", frames=20)
    out, report = tmp_path / "out.mp4", tmp_path / "report.json"
    assert main(["run", "--input", str(clip), "--output", str(out), "--report", str(report), "--quiet", "--no-faces"]) == 0
    with av.open(str(out)) as container:
        assert container.streams.video[0].frames == 20
    data = json.loads(report.read_text())
    assert data["frames"]["done"] == 20 and data["plan"]["policy"] == "block"
    assert data["latency_ms"]["count"] == 20 and data["stages"]["capture"]["process_ms"]["count"] == 20
    assert report.with_suffix(".png").stat().st_size > 1000


def test_run_demo_with_stats_and_config_file(tmp_path: Path, capsys):
    config = tmp_path / "c.toml"
    config.write_text(f'[capture]\ninput = "demo"\nmax_frames = 12\n[detect]\nfaces = false\n[output]\noutput = ["{tmp_path / "d.mp4"}"]\n')
    assert main(["run", "--config", str(config), "--stats"]) == 0
    assert (tmp_path / "d.mp4").exists()
    assert "done: 12 frames" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--input", "missing.mp4", "--output", "o.mp4"], "input file missing.mp4 does not exist: check the path"),
        (["run", "--input", "demo", "--output", "o.xyz"], "unknown video file type .xyz: end the name with one of"),
        (["run", "--input", "demo"], "no output given: add --output"),
        (["run", "--bogus"], "unrecognized arguments: --bogus: see 'realtime run --help'"),
        (["run", "--pace", "sometimes", "--output", "null"], "invalid choice"),
        (["run", "--input", "demo", "--output", "null", "--queue-size", "0"], "--queue-size 0 is out of range"),
        (["run", "--input", "/dev/video63", "--output", "null", "--camera-size", "641x480"], "--camera-size '641x480' is unsupported"),
        (["run", "--input", "/dev/video63", "--output", "null"], "camera /dev/video63 does not exist: plug it in"),
        (["run", "--input", "demo", "--output", "/proc/realtime-x.mp4"], "cannot create /proc/realtime-x.mp4"),
        (["run", "--input", "demo", "--output", "nodir/o.mp4"], "output folder nodir does not exist: create it"),
        (["run", "--config", "missing.toml", "--output", "null"], "config file missing.toml does not exist"),
        (["bench", "--frames", "0"], "--frames must be at least 1"),
    ],
)
def test_bad_input_gets_one_line_and_nonzero_exit(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(args)
    assert code != 0
    line = _one_line_error(capsys)
    assert message in line
    assert not list(tmp_path.glob("*.mp4")) and not list(tmp_path.glob(".*.mp4"))


def test_corrupt_video(tmp_path: Path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypisom" + os.urandom(4000))
    assert main(["run", "--input", str(bad), "--output", str(tmp_path / "o.mp4")]) != 0
    assert "is not a readable video" in _one_line_error(capsys)
    assert not (tmp_path / "o.mp4").exists()


def test_debug_shows_the_traceback(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--input", "missing.mp4", "--output", "o.mp4", "--debug"]) != 0
    assert "Traceback" in capsys.readouterr().err


def test_busy_camera_message():
    source = object.__new__(PyAVSource)
    source.spec = InputSpec("camera", "/dev/video0", "v4l2")
    error = source._open_error(OSError(errno.EBUSY, "Device or resource busy"))
    assert "camera /dev/video0 is busy: close the other program" in str(error)


def test_doctor_reports_every_area(capsys):
    main(["doctor"])
    lines = capsys.readouterr().out.splitlines()
    names = {line[6:22].strip() for line in lines}
    for name in ("python", "av", "torch", "cuda", "backend cpu", "engines", "face model", "shipped model", "cameras", "virtual camera"):
        assert name in names, (name, names)
    assert all(line[:5].strip() in ("ok", "warn", "fail") for line in lines)


def test_doctor_verifies_the_shipped_models_and_flags_a_damaged_one(tmp_path: Path):
    import shutil

    from conftest import REPO

    from realtime.doctor import SHIPPED, check_shipped_models

    assert [c.status for c in check_shipped_models(REPO)] == ["ok", "ok"]
    assert [c.status for c in check_shipped_models(tmp_path)] == ["warn", "warn"]  # elsewhere: not found
    for relative in SHIPPED:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / relative, tmp_path / relative)
    damaged = tmp_path / SHIPPED[0]
    data = bytearray(damaged.read_bytes())
    data[-100] ^= 0xFF  # one flipped bit in the weights
    damaged.write_bytes(bytes(data))
    checks = check_shipped_models(tmp_path)
    assert checks[0].status == "fail" and "checksum" in checks[0].detail and checks[1].status == "ok"


def test_bench_engine_prints_a_table(tmp_path: Path, capsys):
    out = tmp_path / "engine.json"
    assert main(["bench", "engine", "--frames", "30", "--size", "320x240", "--json", str(out)]) == 0
    assert "added latency per queue hop" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert [r["hops"] for r in data["unpaced"]] == [0, 1, 4, 8]
    assert all(r["frames"] == 30 for r in data["unpaced"])


def test_bench_pipeline_writes_report(tmp_path: Path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--input", "demo", "--frames", "20", "--json", str(out), "--quiet", "--no-faces"]) == 0
    data = json.loads(out.read_text())
    assert data["benchmark"] == "pipeline" and data["frames"]["done"] == 20
    assert data["plan"]["paced"] is False


def test_ctrl_c_stops_quickly_and_finalizes_the_output(tmp_path: Path):
    out = tmp_path / "live.mp4"
    report = tmp_path / "live.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "realtime", "run", "--input", "demo", "--loop", "--pace", "native", "--output", str(out), "--report", str(report), "--stats", "--no-faces"],
        stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        # wait until frames flow: the second status line (they come each second), so at the native
        # 30 fps well over the 20 frames asked of the file below even on a loaded machine
        lines = 0
        for line in proc.stderr:
            lines += " fps | " in line
            if lines == 2:
                break
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        code = proc.wait(timeout=20)
    finally:
        proc.kill()
    assert code == 130
    # The pipeline says how long its threads took to stop; the process then writes the report
    # and exits, which on a busy machine can take longer and is not what the bound is about.
    match = re.search(r"all threads stopped ([0-9.]+) s after the request", rest)
    assert match, rest
    assert float(match.group(1)) < 1.0
    with av.open(str(out)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames >= 20
    assert json.loads(report.read_text())["interrupted"] is True


def test_full_pipeline_with_faces_on_the_demo_clip(tmp_path: Path, capsys):
    from conftest import has_face_model

    if not has_face_model():
        pytest.skip("no face_landmarker.task available offline")
    out, report = tmp_path / "demo.mp4", tmp_path / "demo.json"
    assert main(["run", "--input", "demo", "--demo-frames", "30", "--output", str(out), "--report", str(report), "--quiet"]) == 0
    data = json.loads(report.read_text())
    assert set(data["stages"]) >= {"capture", "detect", "track"}
    assert data["stages_info"]["track"]["tracks_started"] == 1
    assert data["stages_info"]["track"]["frames_without_face"] <= 1  # only the birth frame
    assert data["stages_info"]["detect"]["mode"] == "sync"


def test_report_files_and_compare_mode(tmp_path: Path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for path, frames in ((a, "20"), (b, "30")):
        assert main(["bench", "--input", "demo", "--frames", frames, "--json", str(path), "--quiet", "--no-faces"]) == 0
    data = json.loads(a.read_text())
    assert len(data["timeline"]) == 20 and data["timeline"][0]["stages"][0][0] == "capture"
    assert data["startup_s"] is not None and data["first_frame_latency_ms"] > 0
    assert a.with_suffix(".png").stat().st_size > 1000
    summary = a.with_suffix(".md").read_text()
    assert "frames: 20 done" in summary and "| capture |" in summary
    capsys.readouterr()
    assert main(["bench", "--compare", str(a), str(b)]) == 0
    table = capsys.readouterr().out
    assert "| frames done | 20 | 30 | +50.0% |" in table
    assert main(["bench", "--compare", str(a), str(tmp_path / "missing.json")]) == 2


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="POSIX signals")
def test_sigusr1_prints_every_thread_stack_by_name_and_the_process_goes_on():
    code = (
        "import os, signal, sys, threading, time\n"
        "from realtime.cli import _enable_crash_stacks\n"
        "_enable_crash_stacks()\n"
        "threading.Thread(target=time.sleep, args=(30,), name='rt-swap', daemon=True).start()\n"
        "os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # as the landmarker's start does for a moment\n"
        "os.kill(os.getpid(), signal.SIGUSR1)\n"
        "print('still running')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and "still running" in done.stdout
    # written to the copy of stderr, not to the silenced fd 2; each stack under its thread's name
    assert "thread rt-swap" in done.stderr and "thread MainThread" in done.stderr and "time.sleep" not in done.stdout


class _Exited(Exception):
    pass


def _exit_calls(monkeypatch, main_result):
    """entry_point with main replaced: how it exits (os._exit or SystemExit) and with what code."""
    import realtime.cli as cli

    def fake_exit(code):
        raise _Exited(code)

    monkeypatch.setattr(cli, "main", main_result)
    monkeypatch.setattr(cli.os, "_exit", fake_exit)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        cli.entry_point()
    except _Exited as exited:
        return "os._exit", exited.args[0]
    except SystemExit as exited:
        return "SystemExit", exited.code
    finally:  # entry_point installs its stop handlers for good (the process ends with it)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def test_the_process_exits_at_once_after_a_stall_or_a_normal_end(monkeypatch):
    """No waiting for a stuck thread, and no final collection of every object (seconds after torch)."""

    assert _exit_calls(monkeypatch, lambda: 1) == ("os._exit", 1)
    assert _exit_calls(monkeypatch, lambda: 0) == ("os._exit", 0)


def test_a_stop_signal_before_main_handles_it_still_exits_128_plus_the_signal(monkeypatch, capsys):
    """entry_point's handlers are in place before main's: a signal there is one line and 143."""
    import realtime.cli as cli

    def stopped_early():
        raise cli.SignalExit(signal.SIGTERM)

    assert _exit_calls(monkeypatch, stopped_early) == ("os._exit", 143)
    assert capsys.readouterr().err.strip() == "realtime: interrupted (SIGTERM)"


def test_a_stall_is_one_line_and_a_failed_run(monkeypatch, capsys):
    import realtime.cli as cli
    from realtime.errors import StallError

    def stalls(_args):
        raise StallError("the pipeline stalled: no frame came out for 10 s with 3 in flight", "rerun")

    monkeypatch.setitem(cli.COMMANDS, "bench", stalls)
    assert cli.main(["bench"]) == 1
    assert "stalled" in _one_line_error(capsys)


def test_help_and_usage_errors_do_not_load_torch():
    """Parsing every command's flags stays light (it took 3-7 s when the parser imported torch)."""
    code = "import sys\nfrom realtime.cli import make_parser\nmake_parser()\nprint('torch' in sys.modules)\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "False"
    usage = subprocess.run([sys.executable, "-m", "realtime", "run", "--bogus"], capture_output=True, text=True, timeout=60, check=False)
    assert usage.returncode == 2 and usage.stderr.strip().startswith("realtime: error: unrecognized arguments: --bogus")
