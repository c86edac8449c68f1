"""What the control panel costs the pipeline's process: the same paced run (by default the demo
clip at its 30 fps, faces tracked, no generator, so the panel's share is visible) without and with
--control, the latter with a browser's worth of clients (the MJPEG preview and the one-second
numbers). Prints CPU time, frames, drops and p99 latency of each, from the runs' own reports.
    python3 bench/panel_cost.py [--seconds 20] [--json OUT]
    python3 bench/panel_cost.py --input clip.mp4 --fps 60 -- --generator G --identity-encoder E --source demo   (the GPU run)"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path

from realtime.testing import start_with_panel


def _client(url: str, stop: threading.Event, counts: dict[str, int]) -> None:
    """Read the preview stream and the numbers as a browser would: a browser waits as long as it
    takes for the first frame (a GPU run loads its engines after the panel is up), so a stream
    that times out or ends early is opened again until the run ends."""
    base, token = url.split("/?token=")

    def stream(path: str, key: str) -> None:
        while not stop.is_set():
            try:
                with urllib.request.urlopen(f"{base}{path}?token={token}", timeout=10) as response:
                    while not stop.is_set():
                        chunk = response.read1(65536)
                        if not chunk:
                            break
                        counts[key] += len(chunk)
            except Exception:  # noqa: BLE001 - a timeout before the first frame, or the run ended
                counts["reconnects"] += 1
                stop.wait(0.2)

    threads = [threading.Thread(target=stream, args=(p, k), daemon=True) for p, k in (("/api/preview.mjpg", "preview_bytes"), ("/api/events", "events_bytes"))]
    for thread in threads:
        thread.start()
    stop.wait()


def run(seconds: float, panel: bool, source: str = "demo", fps: float = 30.0, extra: tuple[str, ...] = ()) -> dict[str, object]:
    folder = Path(tempfile.mkdtemp())
    report = folder / "report.json"
    frames = int(seconds * fps)
    command = [sys.executable, "-m", "realtime", "run", "--input", source, "--loop", "--max-frames", str(frames), "--pace", "native", "--output", "null", "--report", str(report), *extra]
    if panel:
        command += ["--control", "0"]
    log = folder / "run.log"
    counts = {"preview_bytes": 0, "events_bytes": 0, "reconnects": 0}
    stop = threading.Event()
    if panel:
        process, url = start_with_panel(command, log)
        if not url:  # a run without its panel measures nothing: say why instead of printing zeros
            process.kill()
            raise SystemExit(f"panel_cost: the run never printed its panel's address:\n{log.read_text()[-2000:]}")
        threading.Thread(target=_client, args=(url, stop, counts), daemon=True).start()
    else:
        process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)
    code = process.wait()
    stop.set()
    if code != 0:
        raise SystemExit(f"panel_cost: the run exited {code}:\n{log.read_text()[-2000:]}")
    if panel and counts["preview_bytes"] == 0:  # the point is the cost with the preview streaming
        raise SystemExit(f"panel_cost: no preview frame reached the client:\n{log.read_text()[-2000:]}")
    data = json.loads(report.read_text())
    return {"panel": panel, "frames": data["frames"]["done"], "dropped": sum(data["frames"]["dropped"].values()), "cpu_cores_busy": data["resources"]["cpu_cores_busy"],
            "cpu_seconds": data["resources"]["cpu_seconds"], "latency_p99_ms": data["latency_ms"].get("p99"), **counts}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--input", default="demo")
    parser.add_argument("--fps", type=float, default=30.0, help="the input's frame rate (frames = seconds × fps)")
    parser.add_argument("extra", nargs="*", help="more flags for realtime run (after --)")
    args = parser.parse_args()
    results = [run(args.seconds, panel, args.input, args.fps, tuple(args.extra)) for panel in (False, True, False, True)]
    for r in results:
        print(f"panel {'on ' if r['panel'] else 'off'}: {r['frames']} frames, dropped {r['dropped']}, CPU {r['cpu_cores_busy']} cores busy ({r['cpu_seconds']} s), p99 {r['latency_p99_ms']} ms"
              + (f", preview {int(r['preview_bytes']) >> 10} KiB, numbers {int(r['events_bytes'])} B" if r["panel"] else ""))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
