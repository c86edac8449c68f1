"""uvicorn serving the panel on a thread beside the pipeline, started and stopped with the run."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from realtime.config import ControlConfig, parse_control_address
from realtime.control.api import make_app
from realtime.control.panel import Panel
from realtime.control.preview import PreviewSink
from realtime.control.recording import RecordingSink
from realtime.errors import SinkError
from realtime.live import LiveSettings
from realtime.pipeline.pipeline import Pipeline

log = logging.getLogger("realtime")
START_TIMEOUT_S = 10.0


def start_panel(config: ControlConfig, pipeline: Pipeline, preview: PreviewSink, recording: RecordingSink | None = None) -> PanelServer:
    """The panel over ``pipeline``'s swap stage (found by name) and the live settings it shares
    with the blend, listening."""
    swap = next((stage for stage in pipeline.stages if stage.name == "swap"), None)
    panel = Panel(
        swap=swap,  # type: ignore[arg-type]
        settings=getattr(swap, "settings", None) or LiveSettings(),
        stats=pipeline.stats,
        preview=preview,
        faces_dir=Path(config.faces_dir) if config.faces_dir else None,
        recording=recording,
    )
    server = PanelServer(panel, config.control or "0", config.control_token)
    server.start()
    return server


class PanelServer:
    def __init__(self, panel: Panel, address: str, token: str | None = None) -> None:
        self.host, self.port = parse_control_address(address)
        self.token = token or secrets.token_urlsafe(24)
        self.panel = panel
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/?token={self.token}"

    def start(self) -> None:
        import uvicorn

        # open preview streams are cut after a second when the run ends (they never end by themselves)
        config = uvicorn.Config(make_app(self.panel, self.token, self.host), host=self.host, port=self.port, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="control-panel", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise SinkError(f"the control panel could not listen on {self.host}:{self.port}", "choose another port (--control PORT), or 0 for any free one")
            time.sleep(0.02)
        if self.port == 0:
            self.port = self._server.servers[0].sockets[0].getsockname()[1]
        log.warning("control panel: %s", self.url)  # printed at any verbosity: the token is only here

    def stop(self) -> None:
        self.panel.closing.set()  # open streams end on their own, so the server closes cleanly
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
