"""Input and output error paths, from what the user would see go wrong (issue 38 item 4): a file
that cannot be read to its end must not pass for a finished run; damaged packets are skipped up to
a limit, then the file is called corrupt; an output that cannot be finished, set up or written
never appears under its final name and leaves no partial file or lock behind.

PyAV's containers are C objects that cannot be patched, so a failing disk or file is a thin
wrapper around a real container that fails at the chosen packet."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest

from realtime.bundle import FrameBundle
from realtime.cli import main
from realtime.config import CaptureConfig, OutputConfig
from realtime.errors import ConfigError, SinkError, SourceError
from realtime.io.sinks import FileSink
from realtime.io.sources import MAX_CORRUPT_PACKETS, PyAVSource, SourceInfo, open_source
from realtime.testing import frame_index_of, make_frame, make_test_video

INFO = SourceInfo("file", "synthetic", 64, 48, 30.0, None, None)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name or p.name.endswith(".lock"))


def _frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


# --- input ----------------------------------------------------------------------------------------


class _Demuxing:
    """A real input container whose demuxer, after ``good`` packets, either fails as a disk read
    does (``fail``) or hands out ``bad`` undecodable packets before going on (and again every
    ``every`` packets, if given)."""

    def __init__(self, container: Any, good: int, *, fail: OSError | None = None, bad: int = 0, every: int | None = None) -> None:
        self.container, self.good, self.fail, self.bad, self.every = container, good, fail, bad, every
        self.streams = container.streams

    def demux(self, stream: Any) -> Iterator[Any]:
        for index, packet in enumerate(self.container.demux(stream)):
            if index == self.good or (self.every is not None and index > self.good and (index - self.good) % self.every == 0):
                if self.fail is not None:
                    raise self.fail
                yield from [_Undecodable()] * self.bad
            yield packet

    def seek(self, *args: Any, **kwargs: Any) -> None:
        self.container.seek(*args, **kwargs)

    def close(self) -> None:
        self.container.close()


class _Undecodable:
    def decode(self) -> list[Any]:
        raise av.error.InvalidDataError(errno.EINVAL, "Invalid data found when processing input")


def _source(clip: Path, **demuxing: Any) -> PyAVSource:
    source = open_source(CaptureConfig(input=str(clip)))
    assert isinstance(source, PyAVSource)
    source.container = _Demuxing(source.container, **demuxing)
    return source


def test_a_read_error_in_the_middle_of_a_file_fails_the_run_and_keeps_the_output_as_incomplete(tmp_path, monkeypatch, capsys):
    """Not 'done' with a short out.mp4 under its final name: exit 1, one line naming the input,
    and what was written kept as out.incomplete.mp4."""
    clip = make_test_video(tmp_path / "in.mkv", frames=60)
    opened = PyAVSource.__init__

    def failing_disk(self: PyAVSource, spec: Any, config: CaptureConfig) -> None:
        opened(self, spec, config)
        self.container = _Demuxing(self.container, 20, fail=OSError(errno.EIO, "Input/output error"))

    monkeypatch.setattr(PyAVSource, "__init__", failing_disk)
    out = tmp_path / "out.mp4"
    assert main(["run", "--input", str(clip), "--no-faces", "--output", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"realtime: error: {clip} cannot be read further (Input/output error): check that the file is complete"
    assert not out.exists() and 0 < _frames(tmp_path / "out.incomplete.mp4") <= 20
    assert _leftovers(tmp_path) == []


def test_the_frames_before_a_read_error_arrive_in_order_then_the_error(tmp_path):
    source = _source(make_test_video(tmp_path / "in.mkv", frames=30), good=12, fail=OSError(errno.EIO, "Input/output error"))
    frames = []
    with pytest.raises(SourceError, match="cannot be read further"):
        for frame, _ in source.frames():
            frames.append(frame_index_of(frame))
    source.close()
    assert frames == list(range(len(frames))) and 0 < len(frames) <= 12


def test_damaged_packets_below_the_limit_are_skipped_counted_and_the_file_goes_on(tmp_path):
    source = _source(make_test_video(tmp_path / "in.mkv", frames=30), good=10, bad=MAX_CORRUPT_PACKETS - 1)
    frames = [frame_index_of(frame) for frame, _ in source.frames()]
    source.close()
    assert frames == list(range(30)) and source.corrupt_packets == MAX_CORRUPT_PACKETS - 1


def test_the_limit_counts_damaged_packets_in_a_row_not_in_all(tmp_path):
    """Runs of one fewer than the limit, each ended by a good packet, never add up to 'corrupt'."""
    source = _source(make_test_video(tmp_path / "in.mkv", frames=30), good=5, bad=MAX_CORRUPT_PACKETS - 1, every=4)
    frames = [frame_index_of(frame) for frame, _ in source.frames()]
    source.close()
    assert frames == list(range(30)) and source.corrupt_packets >= 5 * (MAX_CORRUPT_PACKETS - 1)


def test_as_many_damaged_packets_in_a_row_as_the_limit_make_the_file_corrupt(tmp_path):
    clip = make_test_video(tmp_path / "in.mkv", frames=30)
    source = _source(clip, good=10, bad=MAX_CORRUPT_PACKETS)
    frames = []
    with pytest.raises(SourceError, match=rf"^{clip} is corrupt \({MAX_CORRUPT_PACKETS} undecodable packets in a row\): re-encode or replace the file$"):
        for frame, _ in source.frames():
            frames.append(frame_index_of(frame))
    source.close()
    assert frames == list(range(len(frames))) and len(frames) <= 10


# --- output ---------------------------------------------------------------------------------------


class _Disk:
    """A real output container whose disk fails: at close (after the real close has written what
    it could), or at every write from now on."""

    def __init__(self, container: Any, *, close_fails: bool = False, writes_fail: bool = False) -> None:
        self.container, self.close_fails, self.writes_fail = container, close_fails, writes_fail

    def mux(self, packet: Any) -> None:
        if self.writes_fail:
            raise OSError(errno.EIO, "Input/output error")
        self.container.mux(packet)

    def close(self) -> None:
        self.container.close()
        if self.close_fails:
            raise OSError(errno.ENOSPC, "No space left on device")


def _sink(tmp_path: Path) -> FileSink:
    sink = FileSink(tmp_path / "out.mp4", INFO, OutputConfig(), carry_audio=False)
    sink.setup()
    return sink


def _write(sink: FileSink, start: int, count: int) -> None:
    for i in range(start, start + count):
        sink.write(FrameBundle(i, 0, make_frame(i), i / 30))


def test_a_failure_while_finalizing_an_incomplete_output_is_an_error_and_the_frames_are_kept(tmp_path):
    """A run that already failed, whose output then cannot be closed cleanly either: the error
    says so and where the frames are, and the file is there as out.incomplete.mp4."""
    sink = _sink(tmp_path)
    _write(sink, 0, 60)
    sink.container = _Disk(sink.container, close_fails=True)
    incomplete = tmp_path / "out.incomplete.mp4"
    with pytest.raises(SinkError, match=rf"^could not finalize {tmp_path / 'out.mp4'} \(No space left on device\): free some space; what was written is in {incomplete}$"):
        sink.teardown(complete=False)
    assert sink.final_path == incomplete and _frames(incomplete) >= 30
    assert not (tmp_path / "out.mp4").exists() and _leftovers(tmp_path) == []


def test_a_write_that_failed_never_gives_the_final_name_even_when_asked_to_finish(tmp_path):
    """Frames went to the disk, then a write failed: whatever the caller says, the file is not
    complete, so it is out.incomplete.mp4, never out.mp4."""
    sink = _sink(tmp_path)
    _write(sink, 0, 60)  # two fragments on the disk
    sink.container = _Disk(sink.container, writes_fail=True)
    with pytest.raises(SinkError, match="writing .*out.mp4 failed \\(Input/output error\\)"):
        _write(sink, 60, 30)
    sink.teardown(complete=True)
    assert not (tmp_path / "out.mp4").exists()
    assert sink.final_path == tmp_path / "out.incomplete.mp4" and _frames(sink.final_path) >= 30
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(("failure", "raised"), [
    (OSError(errno.EACCES, "Permission denied"), SinkError),
    (ConfigError("video codec 'x' is not available", "use --codec libx264"), ConfigError),
    (KeyboardInterrupt(), KeyboardInterrupt),  # Ctrl-C while the output opens
])
def test_an_output_that_fails_to_set_up_leaves_no_partial_file_and_no_lock(tmp_path, monkeypatch, failure, raised):
    """Failing after its partial file and lock were made: both go, so the same output can be
    set up again at once (a lock left held would say 'another run is writing')."""

    def fails(self: FileSink, *args: Any, **kwargs: Any) -> None:
        assert self.partial.exists() and _leftovers(tmp_path)  # made before the encoder opens
        raise failure

    with monkeypatch.context() as patch:
        patch.setattr(FileSink, "_open_container", fails)
        with pytest.raises(raised):
            FileSink(tmp_path / "out.mp4", INFO, OutputConfig(), carry_audio=False).setup()
    assert list(tmp_path.iterdir()) == []
    again = FileSink(tmp_path / "out.mp4", INFO, OutputConfig(), carry_audio=False)
    again.setup()
    again.teardown(complete=True)
