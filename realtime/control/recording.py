"""Recording from the panel: a side sink that writes the output to a new file between "start"
and "stop", through the same file writer as ``--output`` (H.264, fragmented MP4, finalized and
checked). The panel never names the path: files go into ``--record-dir`` under a timestamped name,
and their timestamps start at 0."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from pathlib import Path

from realtime.bundle import FrameBundle
from realtime.config import OutputConfig
from realtime.errors import SinkError
from realtime.io.sinks import FileSink
from realtime.io.sources import SourceInfo
from realtime.pipeline.stage import SinkStage

log = logging.getLogger("realtime")


class RecordingSink(SinkStage):
    name = "panel-recording"

    def __init__(self, info: SourceInfo, config: OutputConfig, folder: Path) -> None:
        self.info, self.config, self.folder = info, config, folder
        self._lock = threading.Lock()
        self._file: FileSink | None = None
        self._t0: float | None = None
        self.frames = 0
        self.last_file: Path | None = None

    @property
    def recording(self) -> Path | None:
        with self._lock:
            return self._file.path if self._file is not None else None

    def start(self) -> Path:
        with self._lock:
            if self._file is not None:
                return self._file.path
            path = self.folder / time.strftime("recording-%Y%m%d-%H%M%S.mp4")
            sink = FileSink(path, self.info, self.config, carry_audio=False)
            sink.setup()  # SinkError with the fix when the folder cannot take it
            self._file, self._t0, self.frames = sink, None, 0
            log.info("panel: recording to %s", path)
            return path

    def stop(self) -> Path | None:
        with self._lock:
            sink, self._file = self._file, None
        if sink is None:
            return None
        sink.teardown(complete=True)
        self.last_file = sink.final_path or sink.path
        log.info("panel: recorded %d frames to %s", self.frames, self.last_file)
        return self.last_file

    def write(self, bundle: FrameBundle) -> None:
        with self._lock:
            if self._file is None:
                return
            if self._t0 is None:
                self._t0 = bundle.media_time_s
            try:
                self._file.write(dataclasses.replace(bundle, media_time_s=bundle.media_time_s - self._t0))
                self.frames += 1
            except SinkError as exc:  # a failed recording never fails the run
                log.warning("panel: recording stopped: %s", exc)
                broken, self._file = self._file, None
                broken.teardown(complete=False)

    def teardown(self, *, complete: bool) -> None:
        self.stop()
