"""A soak: run a command (a paced, looping `realtime run`) for a while and watch the process from
outside: resident memory, threads, open descriptors, GPU memory, and the run's own status line
(fps, frame, dropped, failed), every few seconds. Writes soak.csv and soak.png (one panel each)
and prints a summary: each measure's first value after warm-up, its last and its peak.

    python3 bench/soak.py --seconds 540 --out OUTDIR -- python3 -m realtime run --input clip.mp4 --loop --pace native --output null --stats ...
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

STATUS = re.compile(r"(\d+) fps .*?frame (\d+).*?dropped (\d+) \| failed (\d+)")
FIELDS = ("t_s", "rss_mb", "threads", "fds", "gpu_mb", "fps", "frame", "dropped", "failed")


def proc_status(pid: int) -> tuple[float, int]:
    """(resident MB, threads) of ``pid`` from /proc."""
    rss_kb, threads = 0, 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss_kb / 1024, threads


def gpu_mb(pid: int) -> float | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0] == str(pid):
            return float(parts[1])
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, required=True, help="how long to run before stopping it with SIGINT")
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds after which 'first' values are taken")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    args.out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    latest: dict[str, int] = {}
    log_lines: list[str] = []

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            log_lines.append(line)
            match = STATUS.search(line)
            if match:
                latest.update(fps=int(match[1]), frame=int(match[2]), dropped=int(match[3]), failed=int(match[4]))

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    rows: list[dict[str, float | int | None]] = []
    t0 = time.monotonic()
    deadline = t0 + args.seconds
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(args.interval)
        try:
            rss, threads = proc_status(proc.pid)
            fds = len(os.listdir(f"/proc/{proc.pid}/fd"))
        except OSError:
            break
        row = {"t_s": round(time.monotonic() - t0, 1), "rss_mb": round(rss, 1), "threads": threads, "fds": fds, "gpu_mb": gpu_mb(proc.pid), **{k: latest.get(k) for k in ("fps", "frame", "dropped", "failed")}}
        rows.append(row)
        elapsed = time.monotonic() - t0
        print(f"[soak] {elapsed:5.0f}/{args.seconds:.0f} s ETA {max(0.0, args.seconds - elapsed):.0f} s  " + "  ".join(f"{k}={row[k]}" for k in FIELDS[1:]), flush=True)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=60)
    reader.join(timeout=5)
    (args.out / "soak.log").write_text("".join(log_lines[-200:]))
    with open(args.out / "soak.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    summarize(rows, args.warmup, code)
    plot(rows, args.out / "soak.png")
    return 0 if code in (0, 130) else 1


def summarize(rows: list[dict[str, float | int | None]], warmup_s: float, code: int) -> None:
    after = [r for r in rows if (r["t_s"] or 0) >= warmup_s] or rows
    print(f"[soak] exit code {code}; {len(rows)} samples; values after {warmup_s:.0f} s warm-up: first / last / peak")
    for field in FIELDS[1:]:
        values = [r[field] for r in after if r[field] is not None]
        if values:
            print(f"[soak]   {field:<8} {values[0]} / {values[-1]} / {max(values)}")


def plot(rows: list[dict[str, float | int | None]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = ("rss_mb", "threads", "fds", "gpu_mb", "fps", "dropped")
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.0 * len(panels)), sharex=True)
    times = [r["t_s"] for r in rows]
    for ax, field in zip(axes, panels, strict=True):
        ax.plot(times, [r[field] if r[field] is not None else float("nan") for r in rows], lw=1.2)
        ax.set_ylabel(field)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("seconds")
    fig.suptitle("soak: a paced, looping face-swap run watched from outside")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    sys.exit(main())
