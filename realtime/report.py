"""Run reports: JSON for machines, a PNG beside it for people."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from realtime import __version__
from realtime.config import Config
from realtime.errors import ConfigError, SinkError
from realtime.io.sources import SourceInfo
from realtime.pipeline.gc_pauses import LONG_PAUSE_MS

log = logging.getLogger("realtime")


def device_info() -> dict[str, Any]:
    """Where the numbers were taken: they mean little without it."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
    }
    torch = sys.modules.get("torch")  # only if a stage already imported it: a report must not pay for it
    if torch is not None:
        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    return info


def process_cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def resource_usage(wall_s: float | None, cpu_start_s: float = 0.0) -> dict[str, Any]:
    """CPU time of this process during the run (and as cores busy on average), peak memory."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = usage.ru_utime + usage.ru_stime - cpu_start_s
    info: dict[str, Any] = {"cpu_seconds": round(cpu_s, 2), "max_rss_mb": round(usage.ru_maxrss / 1024, 1)}
    if wall_s:
        info["cpu_cores_busy"] = round(cpu_s / wall_s, 2)
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        info["gpu_peak_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        info["gpu_peak_reserved_mb"] = round(torch.cuda.max_memory_reserved() / 2**20, 1)
    return info


def run_metadata(config: Config, info: SourceInfo, plan: dict[str, Any]) -> dict[str, Any]:
    return {
        "realtime_version": __version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "device": device_info(),
        "input": {
            "kind": info.kind,
            "description": info.description,
            "width": info.width,
            "height": info.height,
            "fps": info.fps,
        },
        "plan": plan,
        "config": config.to_dict(),
    }


def check_report_path(path: Path) -> None:
    """Before the run: the report (and its .png and .md) can be written at ``path``."""
    if not path.parent.exists():
        raise ConfigError(f"report folder {path.parent} does not exist", f"create it (mkdir -p {path.parent})")
    if path.is_dir():
        raise ConfigError(f"--report {path} is a folder", "name a file, e.g. run.json")
    if not os.access(path.parent, os.W_OK):
        raise ConfigError(f"report folder {path.parent} is not writable", "choose a folder you can write to")
    for sibling in (path, path.with_suffix(".png"), path.with_suffix(".md")):
        if sibling.exists() and not os.access(sibling, os.W_OK):
            raise ConfigError(f"{sibling} exists and cannot be replaced", "choose another --report path")


def write_report(report: dict[str, Any], path: Path) -> None:
    """Write ``path`` (JSON), then beside it the summary (.md) and the plots (.png); each appears
    atomically. A run stopped by a signal must end within the stop's second, and loading
    matplotlib and drawing do not fit in it on a busy machine (seconds, while a stage still
    finishes its frame): that run's plots are drawn by a process of their own (``plot_later``),
    which goes on after this one has exited. A run that ended by itself draws them here."""
    if not path.parent.exists():
        raise SinkError(f"report folder {path.parent} does not exist", f"create it (mkdir -p {path.parent})")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SinkError(f"cannot write report {path} ({exc.strerror or exc})", "choose a writable path") from None
    markdown = path.with_suffix(".md")
    markdown.write_text(summary_markdown(report), encoding="utf-8")
    png = path.with_suffix(".png")
    if report.get("interrupted"):
        try:
            log.info("the plots %s follow in a moment, drawn by process %d", png, plot_later(path, png).pid)
            return
        except OSError as exc:
            log.warning("cannot start a process to draw %s (%s): drawing it now", png, exc.strerror or exc)
    plot_report(report, png)


def plot_later(report_path: Path, png_path: Path) -> subprocess.Popen[bytes]:
    """Start a process that draws the plots of the report at ``report_path`` into ``png_path``
    (``python -m realtime.report``), and return at once. It imports this same realtime and runs
    in a session of its own, so the Ctrl-C that stopped the run (the terminal sends it to the
    whole foreground group) or a closed terminal does not cut it short. It holds none of this
    process's output streams (a pipe reading them would wait for it): it says what it could not
    draw in the report's summary (.md)."""
    package_root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
    return subprocess.Popen(
        [sys.executable, "-m", "realtime.report", str(report_path.resolve()), str(png_path.resolve())],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
    )


def _figure_class() -> Any:
    """matplotlib's Figure, drawn by Agg (no pyplot: no global figure state, no GUI backend)."""
    from matplotlib.figure import Figure

    return Figure


def plot_report(report: dict[str, Any], path: Path) -> None:
    """``report_figure`` as a PNG at ``path`` (atomically)."""
    tmp = path.with_name(f".{path.stem}.tmp.png")
    # the lowest compression: a third less time than the default for a file 11% larger
    report_figure(report).savefig(tmp, dpi=100, pil_kwargs={"compress_level": 1})
    os.replace(tmp, path)


def report_figure(report: dict[str, Any]) -> Any:
    """Latency histogram (capture → output), per-stage p50/p95 bars, the last frames' timeline,
    as a matplotlib Figure. Drawn at the stop, so each series is one artist (an artist per bar
    or box made hundreds) and the margins are fixed (tight_layout drew everything twice more)."""
    figure_class = _figure_class()
    fig = figure_class(figsize=(18, 4.8))
    fig.subplots_adjust(left=0.04, right=0.99, bottom=0.12, top=0.86, wspace=0.28)
    ax_hist, ax_stage, ax_time = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 1.3]})
    bins = report.get("latency_histogram_ms") or []
    if bins:
        # The stored bins are 1% wide; about 40 bars over the observed range read better.
        import numpy as np

        low, high = max(bins[0][0], 1e-3), bins[-1][1]
        edges = np.geomspace(low, high * 1.0001, 41) if high > low * 1.05 else np.array([low, high * 1.0001])
        centres = np.array([(b[0] + b[1]) / 2 for b in bins])
        counts, _ = np.histogram(centres, bins=edges, weights=[b[2] for b in bins])
        ax_hist.stairs(counts, edges, fill=True, color="#3b75af")  # one artist, not one per bar
        if high > 10 * low:
            from matplotlib.ticker import FuncFormatter, NullFormatter

            ax_hist.set_xscale("log")
            # plain numbers: the default 10^n labels are typeset as maths, a third of the plot's cost
            ax_hist.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            ax_hist.xaxis.set_minor_formatter(NullFormatter())
        latency = report["latency_ms"]
        for q, style in (("p50", "-"), ("p95", "--"), ("p99", ":")):
            ax_hist.axvline(latency[q], color="k", linestyle=style, label=f"{q} {latency[q]:.1f} ms")
        ax_hist.legend()
    ax_hist.set_xlabel("latency, capture → output written (ms)")
    ax_hist.set_ylabel("frames")
    ax_hist.set_title(f"end to end: {report['frames']['done']} frames, {report.get('throughput_fps') or 0:.1f} fps")

    rows: list[tuple[str, dict[str, Any]]] = []
    for name, stage in report.get("stages", {}).items():
        rows.append((f"{name} wait", stage["wait_ms"]))
        rows.append((name, stage["process_ms"]))
    for name, sink in report.get("sinks", {}).items():
        rows.append((f"{name} wait", sink["wait_ms"]))
        rows.append((name, sink["write_ms"]))
    rows = [(n, s) for n, s in rows if s.get("count") and s.get("max", 0) > 0]
    if rows:
        y = list(range(len(rows)))
        ax_stage.barh(y, [s["p95"] for _, s in rows], color="#f2b36b", label="p95")
        ax_stage.barh(y, [s["p50"] for _, s in rows], color="#3b75af", label="p50")
        ax_stage.set_yticks(y, [n for n, _ in rows], fontsize=8)
        ax_stage.invert_yaxis()
        ax_stage.legend()
    ax_stage.set_xlabel("ms per frame")
    ax_stage.set_title("per stage (queue wait and work)")
    plot_timeline(ax_time, report.get("timeline", [])[-30:])
    device = report.get("device", {})
    fig.suptitle(f"realtime {report.get('realtime_version', '')} · {report.get('input', {}).get('description', '')} · {device.get('gpu') or device.get('machine', '')}", fontsize=9)
    return fig


STAGE_COLOURS = ["#3b75af", "#ef8636", "#519e3e", "#c53a32", "#8d69b8", "#84584e", "#d57fbe", "#7f7f7f"]
OUTPUT_COLOUR = "#444444"


def plot_timeline(ax: Any, frames: list[dict[str, Any]]) -> None:
    """One row per frame: where its time went, stage by stage (light = waiting in a queue). Every
    box is in one collection: an artist per box (hundreds) made the plot cost seconds at the stop."""
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import to_rgba

    names: list[str] = []
    boxes: list[list[tuple[float, float]]] = []
    colours: list[tuple[float, float, float, float]] = []

    def box(row: int, left: float, width: float, colour: tuple[float, float, float, float]) -> None:
        boxes.append([(left, row - 0.4), (left + width, row - 0.4), (left + width, row + 0.4), (left, row + 0.4)])
        colours.append(colour)

    for row, frame in enumerate(frames):
        t = frame["t_capture_ms"] - frames[0]["t_capture_ms"]
        for stage, wait, work in frame["stages"]:
            if stage not in names:
                names.append(stage)
            colour = STAGE_COLOURS[names.index(stage) % len(STAGE_COLOURS)]
            if stage != "landmarker":  # async: it runs beside the frame, not in its path
                box(row, t, wait, to_rgba(colour, 0.25))
                t += wait
                box(row, t, work, to_rgba(colour))
                t += work
        box(row, t, frame["sink_wait_ms"] + frame["sink_ms"], to_rgba(OUTPUT_COLOUR))
    if boxes:
        ax.add_collection(PolyCollection(boxes, facecolors=colours, linewidths=0))
        ax.autoscale_view()
        handles = [matplotlib_patch(STAGE_COLOURS[i % len(STAGE_COLOURS)], n) for i, n in enumerate(names) if n != "landmarker"]
        ax.legend(handles=[*handles, matplotlib_patch(OUTPUT_COLOUR, "output")], fontsize=7, loc="lower right")
    ax.invert_yaxis()
    ax.set_xlabel("ms since the first of these frames was captured")
    ax.set_ylabel("frame")
    ax.set_title(f"timeline of the last {len(frames)} frames (light: queue wait)")


def matplotlib_patch(colour: str, label: str) -> Any:
    from matplotlib.patches import Patch

    return Patch(color=colour, label=label)


def gc_line(gc: dict[str, Any] | None) -> str:
    """Python's garbage collections while frames flowed: every thread waits for one."""
    if not gc:
        return "- garbage collections: not recorded"
    full, longest = gc["collections"][2], max(gc["pause_ms_max"])
    return (f"- garbage collections: {sum(gc['collections'])} ({full} full), longest pause {longest} ms, "
            f"{len(gc['long_pauses'])} of {LONG_PAUSE_MS:g} ms or more")


def slow_stage_lines(slow: dict[str, Any] | None) -> list[str]:
    """Where stuck stages were (``--slow-stage-ms``): each place with how often it was caught there."""
    if not slow:
        return []
    places: Counter[str] = Counter()
    for snapshot in slow["snapshots"]:
        stack = snapshot["threads"].get(snapshot["stage"], [])
        places[f"{snapshot['stage']} at {stack[-1] if stack else '?'}"] += 1
    lines = [f"- stages on one frame for {slow['threshold_ms']:g} ms or more: {slow['caught']} times ({len(slow['snapshots'])} stack snapshots in slow_stage_stacks)"]
    return lines + [f"  - {count}× {place}" for place, count in places.most_common(8)]


def summary_markdown(report: dict[str, Any]) -> str:
    """A short human summary of one run."""
    latency = report.get("latency_ms", {})
    device = report.get("device", {})
    lines = [
        f"# realtime run report ({report.get('created', '')})",
        "",
        f"- input: {report.get('input', {}).get('description')} ({report.get('input', {}).get('width')}x{report.get('input', {}).get('height')})",
        f"- device: {device.get('gpu') or device.get('machine')}, {device.get('cpu_count')} CPUs, {device.get('platform')}",
        f"- plan: {report.get('plan')}",
        f"- frames: {report['frames']['done']} done, {sum(report['frames']['dropped'].values())} dropped, {report['frames']['failed_frames']} failed",
        f"- throughput: {report.get('throughput_fps')} fps; startup {report.get('startup_s')} s; first frame {report.get('first_frame_latency_ms')} ms",
        f"- resources: {report.get('resources')}",
        f"- latency (capture → output) ms: p50 {latency.get('p50')}, p95 {latency.get('p95')}, p99 {latency.get('p99')}, max {latency.get('max')}",
        gc_line(report.get("gc")),
        *slow_stage_lines(report.get("slow_stage_stacks")),
        "",
        "| stage | work p50 ms | work p95 ms | wait p50 ms |",
        "|---|---:|---:|---:|",
    ]
    for name, stage in report.get("stages", {}).items():
        lines.append(f"| {name} | {stage['process_ms'].get('p50')} | {stage['process_ms'].get('p95')} | {stage['wait_ms'].get('p50')} |")
    for name, info in (report.get("stages_info") or {}).items():
        if info:
            lines.append(f"\n- {name}: {info}")
    return "\n".join(lines) + "\n"


def compare_reports(a: dict[str, Any], b: dict[str, Any], names: tuple[str, str] = ("A", "B")) -> str:
    """Two run reports side by side, as a markdown table."""
    def row(label: str, get: Any) -> str:
        va, vb = get(a), get(b)
        delta = ""
        if isinstance(va, (int, float)) and isinstance(vb, (int, float)) and va:
            delta = f"{100 * (vb - va) / va:+.1f}%"
        return f"| {label} | {va} | {vb} | {delta} |"

    lines = [f"| | {names[0]} | {names[1]} | change |", "|---|---:|---:|---:|"]
    lines.append(row("input", lambda r: r.get("input", {}).get("description")))
    lines.append(row("device", lambda r: r.get("device", {}).get("gpu") or r.get("device", {}).get("machine")))
    lines.append(row("frames done", lambda r: r["frames"]["done"]))
    lines.append(row("dropped", lambda r: sum(r["frames"]["dropped"].values())))
    lines.append(row("throughput fps", lambda r: r.get("throughput_fps")))
    for q in ("p50", "p95", "p99"):
        lines.append(row(f"latency {q} ms", lambda r, q=q: r.get("latency_ms", {}).get(q)))
    stages = list(dict.fromkeys([*a.get("stages", {}), *b.get("stages", {})]))
    for stage in stages:
        lines.append(row(f"{stage} work p50 ms", lambda r, s=stage: r.get("stages", {}).get(s, {}).get("process_ms", {}).get("p50")))
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """``python -m realtime.report RUN.json RUN.png``: draw a written report's plots. A run
    stopped by a signal leaves this to a process of its own (``plot_later``), whose failure is
    said on stderr and, for whoever reads the run's summary, at the end of RUN.md."""
    if len(argv) != 2:
        print("usage: python -m realtime.report RUN.json RUN.png", file=sys.stderr)
        return 2
    report_path, png_path = Path(argv[0]), Path(argv[1])
    try:
        plot_report(json.loads(report_path.read_text(encoding="utf-8")), png_path)
    except Exception as exc:  # noqa: BLE001 - one line, for a run that has already ended
        problem = f"could not draw {png_path} from {report_path} ({type(exc).__name__}: {exc})"
        fix = f"try again with python -m realtime.report {report_path} {png_path}"
        print(f"realtime: error: {problem}: {fix}", file=sys.stderr)
        summary = report_path.with_suffix(".md")
        if summary.is_file():
            with summary.open("a", encoding="utf-8") as lines:
                lines.write(f"\n- plots: {problem}: {fix}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
