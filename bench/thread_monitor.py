"""Run a command and sample, from outside it, where its threads' time goes (Linux).

    python3 bench/thread_monitor.py --out threads.npz [--interval-ms 10] -- python3 -m realtime bench ...

Every interval it reads ``/proc/PID/task/*/schedstat`` of the command's process: per thread, the
time it ran on a CPU and the time it waited in the run queue for one (ns), grouped by the
thread's OS name (the pipeline names its stage threads ``rt-<stage>``; threads that native
libraries start inherit the name of the thread that started them). Waiting on a lock (the GIL)
counts as neither. Also the machine's busy CPUs (/proc/stat). Written as arrays of cumulative
sums on ``time.perf_counter_ns`` (the clock of a report's ``clock_origin_ns``):
``bench/stall_analysis.py`` lines them up with a report's slow frames. Exits with the command's status.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np


def read_threads(pid: int) -> dict[str, tuple[int, int]]:
    """OS thread name → (ns on CPU, ns waiting for a CPU), summed over the process's threads."""
    groups: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            run_ns, wait_ns, _ = (int(v) for v in (task / "schedstat").read_text().split())
        except (OSError, ValueError):  # the thread ended between listing and reading
            continue
        groups[name][0] += run_ns
        groups[name][1] += wait_ns
    return {name: (v[0], v[1]) for name, v in groups.items()}


def machine_busy_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return sum(values) - idle, sum(values)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--interval-ms", type=float, default=10.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    process = subprocess.Popen(command)
    times: list[int] = []
    samples: list[dict[str, tuple[int, int]]] = []
    machine: list[tuple[int, int]] = []
    while process.poll() is None:
        t = time.perf_counter_ns()
        try:
            groups = read_threads(process.pid)
        except OSError:  # the process has just ended
            break
        times.append(t)
        samples.append(groups)
        machine.append(machine_busy_ticks())
        time.sleep(max(0.0, args.interval_ms / 1e3 - (time.perf_counter_ns() - t) / 1e9))
    status = process.wait()
    names = sorted({name for sample in samples for name in sample})
    cpu = np.array([[s.get(n, (0, 0))[0] for n in names] for s in samples], np.int64).reshape(len(samples), len(names))
    wait = np.array([[s.get(n, (0, 0))[1] for n in names] for s in samples], np.int64).reshape(len(samples), len(names))
    # a group's sums drop when one of its threads ends: keep them cumulative
    cpu, wait = np.maximum.accumulate(cpu, axis=0), np.maximum.accumulate(wait, axis=0)
    np.savez_compressed(args.out, t_ns=np.array(times, np.int64), names=np.array(names), cpu_ns=cpu, wait_ns=wait, machine_ticks=np.array(machine, np.int64).reshape(-1, 2))
    print(f"thread monitor: {len(times)} samples of {len(names)} thread names -> {args.out}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
