"""From "apply" to the first output frame wearing the new face, through the control panel: a
running pipeline (the demo clip, the shipped AEI-Net), a new source uploaded N times (Grace Hopper's
portrait and the demo's astronaut, alternately: both public domain), and the panel's own record
of when each change was set and when the preview sink first received a frame swapped under it.
    python3 bench/panel_apply.py [--times 8] [--backends cpu] [--json OUT]"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    import cv2

    from realtime.io.demo import demo_source_path, make_demo_frame
    from realtime.testing import start_with_panel

    parser = argparse.ArgumentParser()
    parser.add_argument("--times", type=int, default=8)
    parser.add_argument("--backends", nargs="+", default=["cpu"])
    parser.add_argument("--input", default="demo")
    parser.add_argument("--engines-dir", default="auto")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    astronaut = folder / "astronaut.png"
    cv2.imwrite(str(astronaut), cv2.cvtColor(make_demo_frame(0), cv2.COLOR_RGB2BGR))
    photos = [demo_source_path().read_bytes(), astronaut.read_bytes()]
    command = [
        sys.executable, "-m", "realtime", "run", "--input", args.input, "--loop", "--output", "null", "--generator", str(ROOT / "models" / "aei-net-v2.safetensors"),
        "--identity-encoder", str(ROOT / "models" / "identity-encoder-v1.safetensors"), "--source", "demo", "--backends", *args.backends, "--control", "0",
        "--engines-dir", args.engines_dir, "--pace", "native",
    ]
    log = folder / "run.log"
    process, url = start_with_panel(command, log)
    try:
        assert url, log.read_text()
        base, token = url.split("/?token=")
        headers = {"Authorization": f"Bearer {token}"}

        def get_state() -> dict:
            with urllib.request.urlopen(urllib.request.Request(base + "/api/state", headers=headers), timeout=30) as response:
                return json.loads(response.read())

        while not get_state()["tracks"]:
            time.sleep(0.2)
        computed = []
        for index in range(args.times):
            request = urllib.request.Request(base + "/api/source/upload?name=photo", data=photos[index % 2], headers=headers, method="POST")
            with urllib.request.urlopen(request, timeout=60) as response:
                computed.append(json.loads(response.read())["computed_ms"])
            time.sleep(1.0)
            print(f"[{index + 1}/{args.times}] change applied", flush=True)
        latencies = get_state()["apply_to_frame_ms"]
        result = {"input": args.input, "backends": args.backends, "changes": args.times, "apply_to_frame_ms": latencies,
                  "median_ms": statistics.median(latencies) if latencies else None, "max_ms": max(latencies) if latencies else None, "embedding_computed_ms": computed}
        print(json.dumps(result))
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
