"""Run a command and sample, from outside it, where its threads' time goes (Linux).

    python3 bench/thread_monitor.py --out threads.npz [--interval-ms 10] -- python3 -m realtime bench ...

Every interval it reads ``/proc/PID/task/*/schedstat`` of the command's process: per thread, the
time it ran on a CPU and the time it waited in the run queue for one (ns), grouped by the
thread's OS name (the pipeline names its stage threads ``rt-<stage>``; threads that native
libraries start inherit the name of the thread that started them). Waiting on a lock (the GIL)
counts as neither. Also the machine's busy CPUs and the time its hypervisor took them away
(steal, /proc/stat) and, where the container has a CPU
quota, the time the kernel held its processes back for exceeding it (cgroup ``cpu.stat``). Written as arrays of cumulative
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


def machine_ticks() -> tuple[int, int, int]:
    """(busy, total, stolen) clock ticks of all CPUs since boot. Stolen: time the hypervisor ran
    something else while this virtual machine's CPUs had work (every thread stalls at once)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    steal = values[7] if len(values) > 7 else 0
    return sum(values) - idle - steal, sum(values), steal


CGROUP_STATS = (  # (file, its throttled-time field, ns per unit): cgroup v2, then v1's two usual mounts
    ("/sys/fs/cgroup/cpu.stat", "throttled_usec", 1000),
    ("/sys/fs/cgroup/cpu/cpu.stat", "throttled_time", 1),
    ("/sys/fs/cgroup/cpu,cpuacct/cpu.stat", "throttled_time", 1),
)
CGROUP_QUOTAS = ("/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us")


def cgroup_throttled_ns() -> int:
    """ns this container's processes were held back by its CPU quota since it began; -1: no quota file."""
    for path, field, unit in CGROUP_STATS:
        try:
            for line in Path(path).read_text().splitlines():
                key, value = line.split()
                if key == field:
                    return int(value) * unit
        except (OSError, ValueError):
            continue
    return -1


def cgroup_quota() -> str:
    for path in CGROUP_QUOTAS:
        try:
            return f"{path}: {Path(path).read_text().strip()}"
        except OSError:
            continue
    return "no CPU quota file"


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
    machine: list[tuple[int, int, int]] = []
    throttled: list[int] = []
    while process.poll() is None:
        t = time.perf_counter_ns()
        try:
            groups = read_threads(process.pid)
        except OSError:  # the process has just ended
            break
        times.append(t)
        samples.append(groups)
        machine.append(machine_ticks())
        throttled.append(cgroup_throttled_ns())
        time.sleep(max(0.0, args.interval_ms / 1e3 - (time.perf_counter_ns() - t) / 1e9))
    status = process.wait()
    names = sorted({name for sample in samples for name in sample})
    cpu = np.array([[s.get(n, (0, 0))[0] for n in names] for s in samples], np.int64).reshape(len(samples), len(names))
    wait = np.array([[s.get(n, (0, 0))[1] for n in names] for s in samples], np.int64).reshape(len(samples), len(names))
    # a group's sums drop when one of its threads ends: keep them cumulative
    cpu, wait = np.maximum.accumulate(cpu, axis=0), np.maximum.accumulate(wait, axis=0)
    np.savez_compressed(args.out, t_ns=np.array(times, np.int64), names=np.array(names), cpu_ns=cpu, wait_ns=wait, machine_ticks=np.array(machine, np.int64).reshape(-1, 3),
                        throttled_ns=np.array(throttled, np.int64), quota=np.array(cgroup_quota()))
    print(f"thread monitor: {len(times)} samples of {len(names)} thread names -> {args.out}; {cgroup_quota()}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
