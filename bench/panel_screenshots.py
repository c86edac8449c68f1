"""Screenshots of the control panel and the kiosk view on a running demo pipeline (public-domain
faces only: the demo clip's astronaut wearing Grace Hopper's portrait, which is also the gallery).
    python3 bench/panel_screenshots.py OUTDIR        (needs Chromium and playwright)"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from playwright.sync_api import sync_playwright

    from realtime.io.demo import demo_source_path
    from realtime.testing import start_with_panel

    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    gallery = Path(tempfile.mkdtemp())
    shutil.copy(demo_source_path(), gallery / "grace_hopper.jpg")
    command = [
        sys.executable, "-m", "realtime", "run", "--input", "demo", "--loop", "--output", "null", "--generator", str(ROOT / "models" / "aei-net-v2.safetensors"),
        "--identity-encoder", str(ROOT / "models" / "identity-encoder-v1.safetensors"), "--source", "demo", "--backends", "cpu",
        "--control", "0", "--faces-dir", str(gallery), "--face-safety", "reveal",
    ]
    log = gallery / "run.log"
    process, url = start_with_panel(command, log)
    try:
        assert url, log.read_text()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(url)
            page.wait_for_function("document.querySelectorAll('#tracks .track').length > 0", timeout=120_000)
            time.sleep(8)  # a few seconds of the chart
            page.screenshot(path=str(out / "panel.png"))
            page.goto(url.split("/?")[0] + "/kiosk")
            page.wait_for_function("document.querySelectorAll('.tile').length > 0 && document.getElementById('preview').naturalWidth > 0", timeout=30_000)
            time.sleep(1)
            page.screenshot(path=str(out / "kiosk.png"))
            browser.close()
        print(f"wrote {out / 'panel.png'} and {out / 'kiosk.png'}")
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
