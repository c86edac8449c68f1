"""The faults an audit found, one test each: bad live controls, special files, full disks, two runs
on one output, bad encoder options, engine folders others can write, stopped streams, truncated
input, the report, signals."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import pytest

from realtime.bundle import FrameBundle
from realtime.cli import main
from realtime.config import BlendConfig, CaptureConfig, OutputConfig, SwapConfig, load_toml
from realtime.errors import ConfigError, ModelError, SinkError, SourceError, StallError
from realtime.io.sinks import FileSink, SinkSpec, make_sinks
from realtime.io.sources import SourceInfo, open_source
from realtime.live import ControlsFileWatcher, LiveSettings
from realtime.pipeline.pipeline import Pipeline
from realtime.stages.capture import CaptureStage
from realtime.testing import CollectingSink, SyntheticSource, make_frame, make_test_video

INFO = SourceInfo("file", "synthetic", 64, 48, 30.0, None, None)


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def realtime_log():
    lines = _Lines()
    logger = logging.getLogger("realtime")
    level = logger.level
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    yield lines.lines
    logger.removeHandler(lines)
    logger.setLevel(level)


def _write(sink: FileSink, frames: int) -> None:
    for i in range(frames):
        sink.write(FrameBundle(i, 0, make_frame(i), i / 30))


# --- live controls and settings files -----------------------------------------------------------


@pytest.mark.parametrize("line", ['opacity = "x"', 'colour = "bogus"', "erode = true", "opacity = 3.0"])
def test_a_bad_live_edit_is_rejected_with_a_log_line_and_the_stream_goes_on(tmp_path, realtime_log, line):
    path = tmp_path / "live.toml"
    settings = LiveSettings(BlendConfig(opacity=0.8))
    path.write_text(f"[blend]\n{line}\n")
    assert ControlsFileWatcher(path, settings).poll() is False
    assert settings.blend == BlendConfig(opacity=0.8)
    assert any("ignoring" in message and str(path) in message for message in realtime_log)


def test_a_fifo_as_controls_file_never_blocks(tmp_path, realtime_log):
    fifo = tmp_path / "controls"
    os.mkfifo(fifo)
    watcher = ControlsFileWatcher(fifo, LiveSettings(BlendConfig()))
    assert watcher.poll() is False  # a blocking open would wait for a writer for ever (the test's timeout)
    assert any("not a regular file" in m for m in realtime_log)


@pytest.mark.parametrize(("kind", "message"), [("fifo", "is not a regular file: point it at a TOML file, not a pipe or a device"), ("device", "is not a regular file"), ("toml", "is not valid TOML")])
def test_a_controls_file_the_run_cannot_read_is_refused_before_anything_opens(tmp_path, capsys, kind, message):
    """Given at the start, a FIFO was ignored without a word (the watcher only said so mid-run,
    and only with a generator): now the run refuses it, with the same line, and opens nothing."""
    path = {"fifo": tmp_path / "controls", "device": Path("/dev/zero"), "toml": tmp_path / "controls.toml"}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "toml":
        path.write_text("[blend\nopacity = 0.5\n")
    out = tmp_path / "out.mp4"
    assert main(["run", "--input", "demo", "--max-frames", "5", "--no-faces", "--output", str(out), "--controls-file", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("realtime: error:") and str(path) in err[-1] and message in err[-1]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith((".mp4", ".lock"))]


def test_a_controls_file_that_does_not_exist_yet_is_read_once_it_does(tmp_path, capsys):
    path = tmp_path / "later.toml"
    assert main(["run", "--input", "demo", "--max-frames", "5", "--no-faces", "--output", "null", "--controls-file", str(path)]) == 0
    assert f"realtime: controls file {path} does not exist yet: it is read once it does" in capsys.readouterr().err


def test_special_and_huge_config_files_are_refused_before_reading(tmp_path):
    with pytest.raises(ConfigError, match="not a regular file"):
        load_toml(Path("/dev/zero"))
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * (2 << 20))
    with pytest.raises(ConfigError, match="more than a settings file holds"):
        load_toml(big)
    assert main(["run", "--config", "/dev/zero", "--output", "null"]) == 2


def test_an_exception_on_the_main_thread_stops_the_workers_and_finalizes_outputs_as_incomplete():
    sink = CollectingSink()
    pipeline = Pipeline(CaptureStage(SyntheticSource(100000, fps=30.0), paced=True), [], [sink], policy="latest_wins")

    def tick() -> None:
        raise ValueError("a controls callback broke")

    with pytest.raises(ValueError, match="controls callback"):
        pipeline.run(on_tick=tick, tick_s=0.2)
    assert pipeline.done() and sink.finalized is False


# --- file outputs ---------------------------------------------------------------------------------


def test_a_full_disk_fails_at_set_up_and_leaves_nothing(tmp_path, monkeypatch):
    import realtime.io.sinks as sinks

    monkeypatch.setattr(sinks, "free_bytes", lambda folder: 1000)
    sink = FileSink(tmp_path / "out.mp4", INFO, OutputConfig(), carry_audio=False)
    with pytest.raises(SinkError, match="is full"):
        sink.setup()
    assert list(tmp_path.iterdir()) == []


class _FullDisk:
    """A container whose writes fail as on a full disk (PyAV's own objects cannot be patched)."""

    def __init__(self, container):
        self.container = container

    def mux(self, packet):
        raise OSError(errno.ENOSPC, "No space left on device")

    def close(self):
        self.container.close()


class _Stream:
    def __init__(self, stream):
        self.stream = stream
        self.flushed = False

    def encode(self, frame):
        self.flushed |= frame is None
        return self.stream.encode(frame)


def test_after_a_failed_write_the_encoder_is_never_flushed_and_the_run_fails(tmp_path):
    """Flushing (muxing) after FFmpeg failed to write the header crashed the process (exit 139)."""
    sink = FileSink(tmp_path / "out.mp4", INFO, OutputConfig(), carry_audio=False)
    sink.setup()
    sink.container, sink.stream = _FullDisk(sink.container), _Stream(sink.stream)
    with pytest.raises(SinkError, match="disk full"):
        _write(sink, 30)
    with pytest.raises(SinkError, match="could not finalize|no file"):
        sink.teardown(complete=True)
    assert not sink.stream.flushed
    assert not [p for p in tmp_path.iterdir() if p.name.endswith((".mp4", ".lock"))]


def test_a_real_full_disk_fails_cleanly(tmp_path):
    """On a 64 KiB tmpfs filled up (needs root and mount; skipped where that is not allowed)."""
    mount = tmp_path / "full"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True, check=False).returncode:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        (mount / "fill").write_bytes(b"\0" * (200 << 10))
        for suffix in (".mp4", ".mkv"):
            code = subprocess.run([sys.executable, "-m", "realtime", "run", "--input", "demo", "--no-faces", "--output", str(mount / f"o{suffix}")], capture_output=True, text=True, timeout=120, check=False)
            assert code.returncode == 1, code.stderr  # never 0 ("done") and never a crash (139)
            assert code.stderr.strip().splitlines()[-1].startswith("realtime: error:")
            assert not [p for p in mount.iterdir() if ".partial" in p.name or p.name.endswith(".lock")]
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_an_interrupted_mp4_keeps_its_frames_playable(tmp_path):
    """The partial file as a crash would leave it (never finalized): fragmented, so it plays."""
    sink = FileSink(tmp_path / "out.mp4", INFO, OutputConfig(), carry_audio=False)
    sink.setup()
    _write(sink, 90)  # 3 s: fragments are cut every second
    crashed = tmp_path / "crashed.mp4"
    shutil.copy(sink.partial, crashed)
    with av.open(str(crashed)) as container:
        assert sum(1 for _ in container.decode(video=0)) >= 30
    sink.teardown(complete=True)
    with av.open(str(tmp_path / "out.mp4")) as container:  # the finished file: a plain MP4 again
        assert container.streams.video[0].frames == 90


def test_two_runs_on_one_output_are_refused_and_partials_never_shared(tmp_path):
    first = FileSink(tmp_path / "out.mp4", INFO, OutputConfig(), carry_audio=False)
    second = FileSink(tmp_path / "out.mp4", INFO, OutputConfig(), carry_audio=False)
    assert first.partial != second.partial
    first.setup()
    with pytest.raises(SinkError, match="another run is writing"):
        second.setup()
    _write(first, 5)
    first.teardown(complete=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # no lock file, no partial
    second.setup()  # free again once the first is done
    second.teardown(complete=True)


def test_outputs_are_compared_by_path_not_by_name(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    sinks = make_sinks([SinkSpec("file", str(tmp_path / "a" / "o.mp4")), SinkSpec("file", str(tmp_path / "b" / "o.mp4"))], INFO, OutputConfig())
    assert len({s.name for s in sinks}) == 2
    with pytest.raises(ConfigError, match="named twice"):
        make_sinks([SinkSpec("file", str(tmp_path / "o.mp4")), SinkSpec("file", str(tmp_path / "a" / ".." / "o.mp4"))], INFO, OutputConfig())


@pytest.mark.parametrize(("flag", "value"), [("--preset", "bogus"), ("--codec", "bogus"), ("--codec", "aac")])
def test_bad_encoder_options_are_a_usage_error_before_the_run_with_nothing_left(tmp_path, capsys, flag, value):
    out = tmp_path / "out.mp4"
    assert main(["run", "--input", "demo", "--no-faces", "--output", str(out), flag, value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("realtime: error:") and "unexpected" not in err[-1]
    assert list(tmp_path.iterdir()) == []


def test_an_existing_output_is_announced_before_it_is_replaced(tmp_path, realtime_log):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"old")
    sink = FileSink(out, INFO, OutputConfig(), carry_audio=False)
    sink.setup()
    sink.teardown(complete=True)
    assert any("exists: it will be replaced" in m for m in realtime_log)


# --- engines --------------------------------------------------------------------------------------


def test_engine_folders_default_to_the_users_cache_and_writable_ones_are_refused(tmp_path, monkeypatch):
    from realtime.inference.engine_dir import check_engines_dir, default_engines_dir, resolve_engines_dir

    monkeypatch.setenv("REALTIME_CACHE", str(tmp_path / "cache"))
    assert SwapConfig().engines_dir == "auto"
    assert resolve_engines_dir("auto") == tmp_path / "cache" / "engines" == default_engines_dir()
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(ModelError, match="can be written by other users"):
        check_engines_dir(shared)
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o755)
    mine.chmod(0o755)
    check_engines_dir(mine)
    check_engines_dir(tmp_path / "missing")  # nothing to load


def test_a_planted_engine_in_the_current_folder_is_not_loaded(tmp_path, monkeypatch):
    """``./engines`` is no longer looked at unless asked for, and asked for it must be ours."""
    from realtime.inference.backend import AotPackageBackend
    from realtime.inference.spec import spec_from_checkpoint
    from realtime.models.checkpoint import save_checkpoint
    from realtime.models.target_autoencoder import TargetAutoencoder

    hyper = {"crop_size": 128, "identities": 1, "width": 4, "bottleneck": 16}
    checkpoint = tmp_path / "t.safetensors"
    save_checkpoint(checkpoint, TargetAutoencoder(**hyper), architecture="target_autoencoder", hyperparameters=hyper)
    monkeypatch.chdir(tmp_path)
    planted = tmp_path / "engines"
    planted.mkdir()
    (planted / "manifest.json").write_text(json.dumps({"engines": []}))
    planted.chmod(0o777)
    spec = spec_from_checkpoint(checkpoint)
    with pytest.raises(ModelError, match="can be written by other users"):
        AotPackageBackend().load(spec, 1, planted)


# --- inputs ---------------------------------------------------------------------------------------


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_stream_that_never_starts_is_an_open_timeout():
    with pytest.raises(SourceError, match="did not answer within the open timeout"):
        open_source(CaptureConfig(input=f"udp://127.0.0.1:{_free_udp_port()}", open_timeout_s=1.0))


def test_a_live_stream_that_stops_ends_with_the_read_timeout_message():
    port = _free_udp_port()

    def send(seconds: float) -> None:
        with av.open(f"udp://127.0.0.1:{port}?pkt_size=1316", "w", format="mpegts") as out:
            stream = out.add_stream("libx264", rate=30)
            stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
            stream.options = {"tune": "zerolatency", "preset": "ultrafast", "g": "10"}
            end, i = time.monotonic() + seconds, 0
            while time.monotonic() < end:
                frame = av.VideoFrame.from_ndarray(make_frame(i), format="rgb24")
                frame.pts, frame.time_base = i, Fraction(1, 30)
                for packet in stream.encode(frame):
                    out.mux(packet)
                i += 1
                time.sleep(1 / 30)

    threading.Thread(target=send, args=(3.0,), daemon=True).start()
    time.sleep(0.2)
    source = open_source(CaptureConfig(input=f"udp://127.0.0.1:{port}", open_timeout_s=1.0))
    frames = 0
    with pytest.raises(SourceError, match="stopped sending frames"):
        for _ in source.frames():
            frames += 1
    source.close()
    assert frames > 10


def test_a_truncated_input_is_warned_about_and_reported(tmp_path, capsys):
    clip = make_test_video(tmp_path / "in.mp4", frames=90)
    data = clip.read_bytes()
    truncated = tmp_path / "cut.mkv"
    make_test_video(truncated, frames=90)  # MKV: readable up to where it is cut
    truncated.write_bytes(truncated.read_bytes()[: len(truncated.read_bytes()) * 2 // 5])
    report = tmp_path / "r.json"
    assert data and main(["run", "--input", str(truncated), "--no-faces", "--output", "null", "--report", str(report), "--quiet"]) == 0
    capture = json.loads(report.read_text())["stages_info"]["capture"]
    assert capture["frames_read"] == 30 and capture["frames_expected"] == 90 and capture["input_ended"]
    assert "ended after 30 of its 90 frames: the file is truncated" in capsys.readouterr().err


# --- the report and signals -----------------------------------------------------------------------


def test_a_bad_report_path_fails_before_the_run(tmp_path, capsys):
    out = tmp_path / "out.mp4"
    assert main(["run", "--input", "demo", "--no-faces", "--output", str(out), "--report", str(tmp_path / "missing" / "r.json")]) == 2
    assert "report folder" in capsys.readouterr().err and not out.exists()


def test_a_failing_report_never_hides_the_runs_own_error(tmp_path, monkeypatch):
    import realtime.app as app
    from realtime.config import build_config

    def broken_report(report, path):
        raise SinkError("cannot write report", "choose a writable path")

    def stalls(self, on_tick=None, tick_s=1.0):
        raise StallError("the pipeline stalled", "rerun")

    monkeypatch.setattr(app, "write_report", broken_report)
    monkeypatch.setattr(Pipeline, "run", stalls)
    config = build_config(overrides={"input": "demo", "faces": False, "output": ("null",), "report": str(tmp_path / "r.json")})
    with pytest.raises(StallError):
        app.run(config)


def _run_process(tmp_path: Path, *extra: str, python_flags: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, *python_flags, "-m", "realtime", "run", "--input", "demo", "--loop", "--pace", "native", "--no-faces", "--output", str(tmp_path / "out.mp4"), *extra],
        stderr=subprocess.PIPE, text=True, env=env,
    )


def _signal_once(proc: subprocess.Popen[str], signum: int, when: Callable[[str], bool]) -> tuple[int, str]:
    """Send ``signum`` as soon as the process writes a stderr line that ``when`` accepts; its exit
    code and all it wrote after that. A process still running after a generous 120 s is killed,
    so a line that never comes fails the test instead of hanging it."""
    watchdog = threading.Timer(120.0, proc.kill)
    watchdog.start()
    try:
        for line in proc.stderr:  # type: ignore[union-attr]
            if when(line):
                proc.send_signal(signum)
                break
        else:
            raise AssertionError("the process ended before the line to synchronise on")
        rest = proc.stderr.read()  # type: ignore[union-attr]
        return proc.wait(timeout=60), rest
    finally:
        watchdog.cancel()
        proc.kill()


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (getattr(signal, "SIGHUP", 1), 129)])
def test_sigterm_and_sighup_stop_cleanly_with_128_plus_the_signal(tmp_path, signum, code):
    proc = _run_process(tmp_path, "--stats")
    try:
        for line in proc.stderr:  # type: ignore[union-attr]
            if " fps | " in line:
                break
        proc.send_signal(signum)
        proc.stderr.read()  # type: ignore[union-attr]
        assert proc.wait(timeout=30) == code
    finally:
        proc.kill()
    with av.open(str(tmp_path / "out.mp4")) as container:  # finalized under its own name
        assert container.streams.video[0].frames > 0


def test_a_signal_during_set_up_leaves_no_partial_file(tmp_path):
    # "input: ..." is logged once the input is open and the pipeline built, just before the
    # outputs open on their threads: the signal lands while they set up (or, on a fast machine,
    # just after); either way the exit is the documented one and nothing half-made is left.
    code, rest = _signal_once(_run_process(tmp_path), signal.SIGTERM, lambda line: line.startswith("realtime: input:"))
    assert code == 143, rest
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name or p.name.endswith(".lock")]


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")
def test_a_sigterm_while_the_commands_are_still_importing_exits_143_with_a_line(tmp_path):
    """Handlers first: the commands' modules load only after them. Python's -X importtime writes a
    line as each module finishes loading; the signal goes the moment the run command's module has
    loaded, while the process is still importing what a run needs (it took the default action,
    exit -15 and not a word, when the handlers came after those imports)."""
    proc = _run_process(tmp_path, python_flags=("-X", "importtime"))
    code, rest = _signal_once(proc, signal.SIGTERM, lambda line: line.startswith("import time:") and line.split("|")[-1].strip() == "realtime.cli.live")
    assert code == 143, rest[-2000:]
    assert "realtime: interrupted (SIGTERM)" in rest and "Traceback" not in rest


# --- hostile files ---------------------------------------------------------------------------------


def _checkpoint_with_metadata(path: Path, **changes) -> Path:
    import torch
    from safetensors.torch import save_file

    meta = {"architecture": "target_autoencoder", "hyperparameters": {"crop_size": 128}, "crop_size": 128, "format_version": 1, **changes}
    save_file({"w": torch.zeros(1)}, str(path), metadata={"realtime": json.dumps(meta)})
    return path


@pytest.mark.parametrize(("change", "named"), [({"format_version": "x"}, "format_version 'x'"), ({"crop_size": 100}, "crop_size 100"), ({"hyperparameters": [1]}, "must be tables")])
def test_hostile_checkpoint_metadata_is_blamed_on_the_checkpoint(tmp_path, capsys, change, named):
    bad = _checkpoint_with_metadata(tmp_path / "bad.safetensors", **change)
    code = main(["run", "--input", "demo", "--output", "null", "--generator", str(bad)])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code in (1, 2) and err.startswith(f"realtime: error: checkpoint {bad} has bad metadata") and named in err
    assert "unexpected" not in err and "--crop-size" not in err


def test_the_teacher_and_training_states_are_never_unpickled_as_code(tmp_path):
    import pickle

    from realtime.train.teacher import load_teacher

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    evil = tmp_path / "teacher.ckpt"
    evil.write_bytes(pickle.dumps({"net_state_dict": Payload()}))
    with pytest.raises(ModelError, match="not the MobileFaceNet teacher"):
        load_teacher(evil)
    assert not (tmp_path / "pwned").exists()
