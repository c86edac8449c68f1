"""The panel in a real browser: headless Chromium (Debian's `chromium`, driven by Playwright) opens
the page of a running pipeline, sees the preview update, uploads a source, and the face in the
output changes; and a page on another port of 127.0.0.1 trying to drive the panel is refused.
Skips, saying why, where Chromium or Playwright is missing (`.ci/run` installs Chromium first)."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.testing import start_with_panel

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "browser-test-token-0123456789"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium installed (Debian: apt-get install chromium; .ci/run does this)")


def _still_clip(path: Path, seconds: float = 30.0) -> Path:
    """One demo frame held still: any change in the face is the swap's, not the clip's."""
    import av

    from realtime.io.demo import make_demo_frame

    frame = make_demo_frame(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=15)
        stream.width, stream.height, stream.pix_fmt = frame.shape[1], frame.shape[0], "yuv420p"
        for _ in range(int(seconds * 15)):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def _other_face(tmp_path: Path) -> Path:
    """A face photo of someone other than the default source (an LFW photo when ../shared has it)."""
    from conftest import shared_dir

    shared = shared_dir()
    lfw = shared / "data" / "faces" / "lfw-deepfunneled" / "Aaron_Eckhart" if shared else None
    photos = sorted(lfw.glob("*.jpg")) if lfw and lfw.is_dir() else []
    if not photos:
        pytest.skip("no LFW photo to upload (../shared is absent)")
    return photos[0]


@pytest.mark.timeout(240)
def test_the_panel_in_chromium_previews_and_changes_the_face(tmp_path):
    from conftest import NEEDS_FACE_MODEL, has_face_model

    chromium = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
    if not has_face_model():
        pytest.skip(NEEDS_FACE_MODEL)
    photo = _other_face(tmp_path)
    clip = _still_clip(tmp_path / "still.mp4")
    command = [
        sys.executable, "-m", "realtime", "run", "--input", str(clip), "--loop", "--pace", "native", "--output", "null",
        "--generator", str(ROOT / "models" / "aei-net-v2.safetensors"), "--identity-encoder", str(ROOT / "models" / "identity-encoder-v1.safetensors"),
        "--source", "demo", "--backends", "cpu", "--control", "0", "--control-token", TOKEN, "--face-safety", "reveal",
    ]
    log_path = tmp_path / "run.log"
    process, url = start_with_panel(command, log_path)
    try:
        assert url, log_path.read_text()[-2000:]
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            page.wait_for_function("document.getElementById('preview').naturalWidth > 0", timeout=90_000)
            page.wait_for_function("/^[1-9][0-9]* fps$/.test(document.getElementById('fps').textContent)", timeout=90_000)
            page.wait_for_function("document.querySelectorAll('#tracks .track').length > 0", timeout=90_000)  # the face is tracked and swapped
            time.sleep(1.0)
            base = url.split("/?")[0]
            first = _preview(page, base)
            page.set_input_files("#upload", str(photo))
            page.wait_for_function("document.getElementById('message').textContent.startsWith('wearing upload:')", timeout=60_000)
            # the new face reaches the preview a few frames later: on a loaded machine that can be
            # seconds, so wait for it (a bounded wait, not a fixed sleep that a slow box outruns)
            deadline = time.monotonic() + 30.0
            while True:
                time.sleep(0.5)
                second = _preview(page, base)
                if (np.abs(first.astype(np.int16) - second.astype(np.int16)).max(axis=2) > 24).sum() > 500 or time.monotonic() > deadline:
                    break
            shots = Path(os.environ.get("REALTIME_SCREENSHOTS", tmp_path))
            page.screenshot(path=str(shots / "panel.png"))
            page.goto(base + "/kiosk")
            page.wait_for_function("document.getElementById('preview').naturalWidth > 0", timeout=30_000)
            page.screenshot(path=str(shots / "kiosk.png"))
            browser.close()
        # the input is one still frame: what changed is the face, now wearing another person, and
        # nothing else (the changed pixels sit in one face-sized box)
        changed = np.abs(first.astype(np.int16) - second.astype(np.int16)).max(axis=2) > 24
        rows, cols = np.nonzero(changed)
        assert changed.sum() > 500, f"only {changed.sum()} pixels changed"
        box_share = (np.ptp(rows) + 1) * (np.ptp(cols) + 1) / changed.size
        assert box_share < 0.1, f"the change spreads over {box_share:.0%} of the picture"
    finally:
        process.terminate()
        process.wait(timeout=30)


def _preview(page, base: str) -> np.ndarray:
    """The newest preview frame, fetched by the page itself (with the cookie it was given)."""
    data = page.evaluate("async url => Array.from(new Uint8Array(await (await fetch(url)).arrayBuffer()))", base + "/api/preview.jpg")
    return cv2.imdecode(np.array(data, np.uint8), cv2.IMREAD_COLOR)


ATTACK_PAGE = """<!doctype html><html><body>
<form id="form" method="POST" action="{panel}/api/mode" enctype="text/plain" target="sink">
  <input name='{{"mode": "original", "x": "' value='"}}'></form>
<iframe name="sink"></iframe>
<script>
async function attack() {{
  const results = {{}};
  try {{ await fetch('{panel}/api/mode', {{method: 'POST', mode: 'no-cors', credentials: 'include', headers: {{'Content-Type': 'text/plain'}}, body: '{{"mode": "original"}}'}}); results.fetch = 'sent'; }}
  catch (error) {{ results.fetch = String(error); }}
  try {{ const response = await fetch('{panel}/api/mode', {{method: 'POST', credentials: 'include', headers: {{'Content-Type': 'application/json'}}, body: '{{"mode": "original"}}'}}); results.cors = response.status; }}
  catch (error) {{ results.cors = 'blocked by the browser'; }}
  return results;
}}
</script></body></html>"""


def _serve_page(html: str):
    """A page on its own port of 127.0.0.1 (another origin, the same site as the panel)."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.timeout(180)
def test_a_page_on_another_port_cannot_drive_the_panel_in_chromium():
    """The panel's page is opened first (so the browser holds its cookie, which SameSite=strict
    still sends to another port of the same host); then a page on another port of 127.0.0.1
    POSTs to /api/mode by fetch (no-cors, text/plain), by a CORS fetch and by a form. Each must be
    refused and the mode stay 'swap'. The panel's own page still switches the mode (its JSON is
    accepted) and a text/plain POST from it gets 415. A DNS name rebound to 127.0.0.1 gets 403.
    No face model needed: the panel runs over no swap stage."""
    from realtime.control.panel import Panel
    from realtime.control.preview import PreviewSink
    from realtime.control.server import PanelServer
    from realtime.live import LiveSettings
    from realtime.pipeline.stats import StatsCollector

    chromium = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
    controls = LiveSettings()
    panel_server = PanelServer(Panel(None, controls, StatsCollector(), PreviewSink()), "127.0.0.1:0", TOKEN)
    panel_server.start()
    base = f"http://127.0.0.1:{panel_server.port}"
    attacker = _serve_page(ATTACK_PAGE.format(panel=base))
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--host-resolver-rules=MAP rebound.test 127.0.0.1"])
            page = browser.new_page()
            page.goto(panel_server.url, wait_until="domcontentloaded")  # the preview never loads: no frames here
            assert any(c["name"] == "realtime_token" for c in page.context.cookies())

            statuses: list[int] = []
            page.on("response", lambda response: statuses.append(response.status) if response.url.endswith("/api/mode") else None)
            page.goto(f"http://127.0.0.1:{attacker.server_address[1]}/")
            results = page.evaluate("attack()")
            with page.expect_response(lambda response: response.url.endswith("/api/mode") and response.request.method == "POST") as form_post:
                page.evaluate("document.getElementById('form').submit()")
            assert form_post.value.status == 403
            assert results["fetch"] == "sent" and results["cors"] == "blocked by the browser", results
            assert controls.choice.mode == "swap" and controls.choice.version == 0
            assert statuses and all(status == 403 for status in statuses), statuses  # what reached the panel was refused

            page.goto(panel_server.url, wait_until="domcontentloaded")  # the panel's own page: its JSON goes through, text/plain does not
            page.check("input[name=mode][value=blur]")
            page.wait_for_function("document.querySelector('input[name=mode][value=blur]').checked")
            own_plain = page.evaluate("async () => (await fetch('/api/mode', {method: 'POST', headers: {'Content-Type': 'text/plain'}, body: '{\"mode\": \"original\"}'})).status")
            assert own_plain == 415
            rebound = page.goto(f"http://rebound.test:{panel_server.port}/?token={TOKEN}")
            assert rebound is not None and rebound.status == 403 and "not this panel" in rebound.text()
            browser.close()
        assert controls.choice.mode == "blur" and controls.choice.version == 1
    finally:
        attacker.shutdown()
        panel_server.stop()
