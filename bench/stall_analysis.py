"""Where the threads' time went while a run's slowest frames were in flight.

    python3 bench/stall_analysis.py REPORT.json THREADS.npz [--png stalls.png] [--min-latency-ms 60]

REPORT: a pipeline report (``realtime bench --json``) with ``clock_origin_ns``; THREADS: from
``bench/thread_monitor.py`` around the same run. For each thread name: CPU cores used and cores'
worth of waiting for a CPU, inside the slow frames' windows (capture to output) against the rest
of the run; plus the machine's busy CPUs. Reading it: a stage whose run-queue wait jumps was
starved of CPU; threads that neither run nor wait were blocked (a lock, the GIL, the GPU).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def window_rates(t_ns: np.ndarray, cumulative: np.ndarray, windows: list[tuple[int, int]]) -> np.ndarray:
    """Mean rate (units per ns) of each column of ``cumulative`` over the union of ``windows``."""
    total, span = np.zeros(cumulative.shape[1]), 0
    for start, end in windows:
        i, j = np.searchsorted(t_ns, start), np.searchsorted(t_ns, end)
        if j - i < 1 or j >= len(t_ns):
            continue
        i = max(i - 1, 0)  # the sample at or before the start
        total += cumulative[j] - cumulative[i]
        span += t_ns[j] - t_ns[i]
    return total / span if span else np.full(cumulative.shape[1], np.nan)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("report", type=Path)
    parser.add_argument("threads", type=Path)
    parser.add_argument("--png", type=Path)
    parser.add_argument("--min-latency-ms", type=float, default=60.0)
    parser.add_argument("--dpi", type=int, default=110)
    args = parser.parse_args()
    report = json.loads(args.report.read_text())
    data = np.load(args.threads)
    t_ns, names, cpu, wait, machine = data["t_ns"], [str(n) for n in data["names"]], data["cpu_ns"], data["wait_ns"], data["machine_ticks"]
    origin = report["clock_origin_ns"]
    slow = [f for f in report["slowest_frames"] if f["latency_ms"] >= args.min_latency_ms]
    windows = sorted((origin + int(f["t_capture_ms"] * 1e6), origin + int((f["t_capture_ms"] + f["latency_ms"]) * 1e6)) for f in slow)
    run_end = origin + int(report["duration_s"] * 1e9)
    normal, cursor = [], origin
    for start, end in windows:  # the rest of the run, between the slow windows
        if start > cursor:
            normal.append((cursor, start))
        cursor = max(cursor, end)
    normal.append((cursor, run_end))
    print(f"{len(slow)} frames of ≥{args.min_latency_ms:.0f} ms latency among the {len(report['slowest_frames'])} slowest kept; "
          f"their windows cover {sum(e - s for s, e in windows) / 1e9:.2f} s of {report['duration_s']:.1f} s")
    print("slow frames at (s): " + ", ".join(f"{f['t_capture_ms'] / 1e3:.2f}" for f in sorted(slow, key=lambda f: f["t_capture_ms"])))
    rows = [("thread name", "cpu slow", "cpu rest", "runq-wait slow", "runq-wait rest")]
    cpu_slow, cpu_rest = window_rates(t_ns, cpu, windows), window_rates(t_ns, cpu, normal)
    wait_slow, wait_rest = window_rates(t_ns, wait, windows), window_rates(t_ns, wait, normal)
    for k in np.argsort(-cpu_rest):
        rows.append((names[k], f"{cpu_slow[k]:.2f}", f"{cpu_rest[k]:.2f}", f"{wait_slow[k]:.3f}", f"{wait_rest[k]:.3f}"))
    busy = machine[:, 0:1].astype(float)
    total = machine[:, 1:2].astype(float)
    cores = report.get("device", {}).get("cpu_count", 1)
    share_slow = window_rates(t_ns, busy, windows)[0] / max(window_rates(t_ns, total, windows)[0], 1e-12)
    share_rest = window_rates(t_ns, busy, normal)[0] / max(window_rates(t_ns, total, normal)[0], 1e-12)
    rows.append(("(machine, busy CPUs)", f"{share_slow * cores:.2f}", f"{share_rest * cores:.2f}", "", ""))
    if machine.shape[1] > 2:  # CPUs' worth taken by the hypervisor (steal)
        stolen = machine[:, 2:3].astype(float)
        steal_slow = window_rates(t_ns, stolen, windows)[0] / max(window_rates(t_ns, total, windows)[0], 1e-12)
        steal_rest = window_rates(t_ns, stolen, normal)[0] / max(window_rates(t_ns, total, normal)[0], 1e-12)
        rows.append(("(machine, CPUs stolen)", f"{steal_slow * cores:.3f}", f"{steal_rest * cores:.3f}", "", ""))
    if "throttled_ns" in data and data["throttled_ns"].min() >= 0:  # held back by the container's CPU quota
        held = data["throttled_ns"][:, None].astype(float)
        rows.append(("(cgroup quota: throttled)", f"{window_rates(t_ns, held, windows)[0]:.3f}", f"{window_rates(t_ns, held, normal)[0]:.3f}", "", ""))
        print(f"CPU quota {data['quota']}; throttled {(held[-1, 0] - held[0, 0]) / 1e6:.0f} ms over the run")
    width = max(len(r[0]) for r in rows)
    print("cores in use / cores' worth of run-queue wait, inside the slow frames' windows vs the rest:")
    for r in rows:
        print(f"  {r[0]:<{width}}  {r[1]:>9} {r[2]:>9} {r[3]:>15} {r[4]:>15}")
    if args.png and windows:
        plot(args.png, t_ns, names, cpu, wait, windows, origin, args.dpi)


def plot(path: Path, t_ns: np.ndarray, names: list[str], cpu: np.ndarray, wait: np.ndarray, windows: list[tuple[int, int]], origin: int, dpi: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centre = windows[len(windows) // 2][0]
    keep = (t_ns > centre - 4e9) & (t_ns < centre + 4e9)
    t = (t_ns[keep][1:] - origin) / 1e9
    dt = np.diff(t_ns[keep])[:, None]
    cores_used = np.diff(cpu[keep], axis=0) / dt
    waiting = np.diff(wait[keep], axis=0) / dt
    top = np.argsort(-cores_used.mean(axis=0))[:8]
    fig, (a, b) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    for k in top:
        a.plot(t, cores_used[:, k], lw=0.8, label=names[k])
        b.plot(t, waiting[:, k], lw=0.8, label=names[k])
    for ax in (a, b):
        for start, end in windows:
            if centre - 4e9 < start < centre + 4e9:
                ax.axvspan((start - origin) / 1e9, (end - origin) / 1e9, color="red", alpha=0.15)
    a.set_ylabel("cores on CPU")
    b.set_ylabel("cores' worth waiting\nfor a CPU")
    b.set_xlabel("s from the first capture (red: frames with high latency, capture to output)")
    a.legend(fontsize=7, ncol=4)
    a.set_title("threads of the run, by OS name (bench/thread_monitor.py)")
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)


if __name__ == "__main__":
    main()
