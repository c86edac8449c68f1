import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from realtime.cli import main
from realtime.config import CaptureConfig, OutputConfig
from realtime.errors import ConfigError, SinkError, VirtualCameraError
from realtime.io.sinks import FileSink, NullSink, StreamSink, VirtualCameraSink, even_size, parse_sink_spec
from realtime.io.sources import SourceInfo, open_source
from realtime.pipeline.pipeline import Pipeline
from realtime.stages.capture import CaptureStage
from realtime.testing import CollectingSink, SyntheticSource, frame_index_of, make_test_video

INFO = SourceInfo("file", "synthetic", 64, 48, 30.0, None, None)


def _decode(path_or_file, **kwargs):
    with av.open(path_or_file, **kwargs) as container:
        stream = container.streams.video[0]
        frames = [(f.to_ndarray(format="rgb24"), float(f.time)) for f in container.decode(stream)]
        return frames, container


def _run(source, sinks, policy="block"):
    Pipeline(CaptureStage(source, paced=False), [], sinks, policy=policy).run()


@pytest.mark.parametrize(
    "text, kind",
    [("out.mp4", "file"), ("x/y.MKV", "file"), ("udp://127.0.0.1:5000", "stream"), ("rtmp://h/app/key", "stream"), ("vcam", "vcam"), ("vcam:/dev/video10", "vcam"), ("null", "null")],
)
def test_parse_sink_spec(text, kind):
    assert parse_sink_spec(text).kind == kind


@pytest.mark.parametrize("text", ["out.xyz", "noextension", "gopher://x"])
def test_parse_sink_spec_rejects(text):
    with pytest.raises(ConfigError):
        parse_sink_spec(text)


def test_even_size():
    assert even_size(641, 481) == (640, 480)


def test_file_round_trip_keeps_count_size_and_timestamps(tmp_path: Path):
    out = tmp_path / "out.mp4"
    sink = FileSink(out, INFO, OutputConfig(crf=0), carry_audio=False)
    _run(SyntheticSource(40, fps=30.0), [sink])
    assert out.exists() and not list(tmp_path.glob(".*partial*"))
    frames, _ = _decode(str(out))
    assert len(frames) == 40
    assert frames[0][0].shape == (48, 64, 3)
    assert [frame_index_of(f) for f, _ in frames] == list(range(40))
    assert [round(t, 3) for _, t in frames] == [round(i / 30, 3) for i in range(40)]


def test_file_input_to_file_output_carries_audio(tmp_path: Path):
    clip = make_test_video(tmp_path / "in.mp4", frames=30, audio=True)
    source = open_source(CaptureConfig(input=str(clip)))
    assert source.info.audio_path == clip
    out = tmp_path / "out.mp4"
    _run(source, [FileSink(out, source.info, OutputConfig(), carry_audio=True)])
    with av.open(str(out)) as container:
        assert len(container.streams.video) == 1 and len(container.streams.audio) == 1
        assert container.streams.video[0].frames == 30
        audio_s = sum(p.duration or 0 for p in container.demux(container.streams.audio[0])) * container.streams.audio[0].time_base
        assert 0.8 <= float(audio_s) <= 1.1  # cut to the video's second, not longer


def test_failed_run_leaves_an_incomplete_file_not_the_final_name(tmp_path: Path):
    out = tmp_path / "out.mp4"
    sink = FileSink(out, INFO, OutputConfig(), carry_audio=False)
    failing = CollectingSink("bad", fail_after=10)
    with pytest.raises(OSError):
        _run(SyntheticSource(10**6), [sink, failing])
    assert not out.exists()
    incomplete = tmp_path / "out.incomplete.mp4"
    frames, _ = _decode(str(incomplete))
    assert len(frames) >= 5  # what was written is finalized and playable


def test_a_missing_output_folder_is_refused(tmp_path: Path):
    with pytest.raises(SinkError, match="does not exist"):
        FileSink(tmp_path / "nope" / "out.mp4", INFO, OutputConfig(), carry_audio=False).setup()


NOBODY = 65534


def _as_nobody(check: Callable[[], str]) -> str:
    """``check()``'s answer, or the error it raised, computed in a child of this process forked
    and running as 'nobody' (uid and gid 65534): root may write anywhere, CI runs as root, and a
    fresh Python could not start as nobody here (its interpreter lives under /root). The check
    makes system calls only: no lock another thread of this process could hold at the fork."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer down the pipe, then end without running any cleanup
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            answer = check()
        except BaseException as error:  # noqa: BLE001 - whatever it was goes back to the test
            answer = f"{type(error).__name__}: {error}"
        os.write(write, answer.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        answer = pipe.read().decode()
    os.waitpid(pid, 0)
    return answer


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork to check as another user")
def test_an_output_folder_this_user_cannot_write_is_refused_at_set_up():
    """As a user who may not write the folder: as this one, or, under root (CI), as 'nobody'."""
    folder = Path(tempfile.mkdtemp(prefix="realtime-unwritable-"))
    try:
        folder.chmod(0o755)  # nobody may look in, not write
        locked = folder / "locked"
        locked.mkdir(mode=0o555)

        def refused() -> str:
            try:
                FileSink(locked / "out.mp4", INFO, OutputConfig(), carry_audio=False).setup()
            except SinkError as error:
                return f"SinkError: {error}"
            return "set up"

        answer = _as_nobody(refused) if os.geteuid() == 0 else refused()
        assert answer == f"SinkError: output folder {locked} is not writable: choose a folder you can write to"
        assert list(locked.iterdir()) == []
    finally:
        (folder / "locked").chmod(0o755)
        shutil.rmtree(folder)


def test_udp_mpegts_stream_reads_back_on_loopback():
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(0.5)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    port = receiver.getsockname()[1]
    received = bytearray()
    done = threading.Event()

    def receive():
        while not done.is_set():
            try:
                received.extend(receiver.recv(65536))
            except TimeoutError:
                continue

    thread = threading.Thread(target=receive)
    thread.start()
    try:
        sink = StreamSink(f"udp://127.0.0.1:{port}", INFO, OutputConfig())
        assert sink.url.endswith("?pkt_size=1316")
        _run(SyntheticSource(60, fps=30.0), [sink])
    finally:
        done.set()
        thread.join()
        receiver.close()
    assert len(received) % 188 == 0 and received[0] == 0x47  # whole MPEG-TS packets
    frames, container = _decode(io.BytesIO(bytes(received)), format="mpegts")
    assert len(frames) >= 55  # loopback UDP with a large buffer loses nothing in practice
    assert frames[0][0].shape == (48, 64, 3)
    ids = [frame_index_of(f) for f, _ in frames]
    assert ids == sorted(ids)


def test_virtual_camera_without_a_device_says_how_to_create_one(monkeypatch):
    monkeypatch.setattr("realtime.io.sinks.linux_loopback_devices", lambda: [])
    monkeypatch.setattr("sys.platform", "linux")
    sink = VirtualCameraSink(INFO, OutputConfig())
    with pytest.raises(VirtualCameraError, match="v4l2loopback.*exclusive_caps=1"):
        sink.setup()


def test_virtual_camera_real_library_reaches_the_missing_device_boundary():
    pyvirtualcam = pytest.importorskip("pyvirtualcam")
    sink = VirtualCameraSink(INFO, OutputConfig(), device="/dev/video63", factory=pyvirtualcam.Camera)
    with pytest.raises(VirtualCameraError, match="cannot open the virtual camera"):
        sink.setup()


def test_virtual_camera_sends_rgb_frames_at_the_source_size():
    sent = []

    class FakeCamera:
        def __init__(self, width, height, fps, *, backend, device):
            self.args = (width, height, fps, backend, device)

        def send(self, frame):
            sent.append(frame.copy())

        def close(self):
            sent.append("closed")

    sink = VirtualCameraSink(INFO, OutputConfig(vcam_backend="v4l2loopback"), device="/dev/video10", factory=FakeCamera)
    _run(SyntheticSource(5), [sink])
    assert sink.camera.args == (64, 48, 30.0, "v4l2loopback", "/dev/video10")
    assert len(sent) == 6 and sent[-1] == "closed"
    assert sent[0].shape == (48, 64, 3) and sent[0].dtype == np.uint8


def test_null_sink_discards_but_counts():
    sink = NullSink()
    pipeline = Pipeline(CaptureStage(SyntheticSource(5), paced=False), [], [sink], policy="block")
    assert pipeline.run().frames_done == 5
    assert pipeline.stats.report()["sinks"]["null"]["written"] == 5


def test_output_on_a_read_only_filesystem_fails_at_setup():
    target = Path("/proc/realtime-test.mp4")
    if not Path("/proc").is_dir():
        pytest.skip("no /proc on this platform")
    with pytest.raises(SinkError, match="cannot create|not writable"):
        FileSink(target, INFO, OutputConfig(), carry_audio=False).setup()


def test_a_looped_input_loops_its_audio_too(tmp_path: Path):
    """Three passes of a one-second clip: three seconds of video, and of sound (not one)."""
    clip = make_test_video(tmp_path / "in.mp4", frames=30, audio=True)
    out = tmp_path / "out.mp4"
    assert main(["run", "--input", str(clip), "--loop", "--pace", "none", "--max-frames", "90", "--no-faces", "--output", str(out), "--quiet"]) == 0
    with av.open(str(out)) as container:
        audio = container.streams.audio[0]
        packets = [p for p in container.demux(audio) if p.pts is not None]
        audio_s = float(sum(p.duration or 0 for p in packets) * audio.time_base)
        pts = [p.pts for p in packets]
    assert 2.7 <= audio_s <= 3.1 and pts == sorted(pts)


def _dead_pid() -> int:
    """The id of a process that has ended (Linux hands ids out in turn: it is not reused soon)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_runs_partial_file_and_lock_are_recovered_by_the_next_run_to_that_output(tmp_path: Path, capsys):
    """kill -9 in the middle of a run leaves '.out.<pid>-<hex>.partial.mp4' and '.out.mp4.lock'
    (nothing of the run is left to remove them): the next run to out.mp4 keeps what reached the
    disk as out.incomplete.mp4, says so, and leaves neither behind."""
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen(
        [sys.executable, "-m", "realtime", "run", "--input", "demo", "--loop", "--pace", "native", "--no-faces", "--output", str(out), "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120  # generous: only a bound for a run that never writes
        partials: list[Path] = []
        while not partials or partials[0].stat().st_size < 4096:  # a first fragment is on the disk
            assert proc.poll() is None and time.monotonic() < deadline, "the run never wrote its partial file"
            time.sleep(0.1)
            partials = list(tmp_path.glob(".out.*.partial.mp4"))
        proc.kill()
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert partials[0].name.startswith(f".out.{proc.pid}-") and (tmp_path / ".out.mp4.lock").exists()
    assert main(["run", "--input", "demo", "--max-frames", "10", "--no-faces", "--output", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert f"(process {proc.pid}) left {partials[0].name}: what reached the disk is kept as {tmp_path / 'out.incomplete.mp4'}" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.incomplete.mp4", "out.mp4"]  # no partial, no lock
    assert len(_decode(str(tmp_path / "out.incomplete.mp4"))[0]) >= 1 and len(_decode(str(out))[0]) == 10


def test_a_partial_file_is_left_alone_while_the_process_named_in_it_exists(tmp_path: Path):
    planted = tmp_path / f".out.{os.getpid()}-abcdef.partial.mp4"
    planted.write_bytes(b"x" * 100)
    sink = FileSink(tmp_path / "out.mp4", INFO, OutputConfig(), carry_audio=False)
    sink.setup()
    sink.teardown(complete=True)
    assert planted.read_bytes() == b"x" * 100 and not (tmp_path / "out.incomplete.mp4").exists()


def test_recovery_never_replaces_an_earlier_incomplete_file_and_drops_empty_partials(tmp_path: Path):
    earlier = tmp_path / "out.incomplete.mp4"
    earlier.write_bytes(b"earlier")
    dead = _dead_pid()
    (tmp_path / f".out.{dead}-000001.partial.mp4").write_bytes(b"frames")
    (tmp_path / f".out.{dead}-000002.partial.mp4").write_bytes(b"")
    (tmp_path / f".other.{dead}-000003.partial.mp4").write_bytes(b"another output's")
    sink = FileSink(tmp_path / "out.mp4", INFO, OutputConfig(), carry_audio=False)
    sink.setup()
    sink.teardown(complete=True)
    assert earlier.read_bytes() == b"earlier" and (tmp_path / "out.incomplete-2.mp4").read_bytes() == b"frames"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".other.{dead}-000003.partial.mp4", "out.incomplete-2.mp4", "out.incomplete.mp4"]
