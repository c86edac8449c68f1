"""Run reports: JSON for machines, a PNG beside it for people."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from realtime import __version__
from realtime.config import Config
from realtime.errors import SinkError
from realtime.io.sources import SourceInfo


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


def run_metadata(config: Config, info: SourceInfo, plan: dict[str, Any]) -> dict[str, Any]:
    return {
        "realtime_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
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


def write_report(report: dict[str, Any], path: Path) -> None:
    """Write ``path`` (JSON) and ``path`` with a .png suffix (plots); each appears atomically."""
    if not path.parent.exists():
        raise SinkError(f"report folder {path.parent} does not exist", f"create it (mkdir -p {path.parent})")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SinkError(f"cannot write report {path} ({exc.strerror or exc})", "choose a writable path") from None
    plot_report(report, path.with_suffix(".png"))


def plot_report(report: dict[str, Any], path: Path) -> None:
    """Latency histogram (capture → output) and per-stage p50/p95 bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_hist, ax_stage) = plt.subplots(1, 2, figsize=(12, 4.5))
    bins = report.get("latency_histogram_ms") or []
    if bins:
        # The stored bins are 1% wide; about 40 bars over the observed range read better.
        import numpy as np

        low, high = max(bins[0][0], 1e-3), bins[-1][1]
        edges = np.geomspace(low, high * 1.0001, 41) if high > low * 1.05 else np.array([low, high * 1.0001])
        centres = np.array([(b[0] + b[1]) / 2 for b in bins])
        counts, _ = np.histogram(centres, bins=edges, weights=[b[2] for b in bins])
        ax_hist.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="#3b75af")
        ax_hist.set_xscale("log" if high > 10 * low else "linear")
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
        ax_stage.set_yticks(y, [n for n, _ in rows])
        ax_stage.invert_yaxis()
        ax_stage.legend()
    ax_stage.set_xlabel("ms per frame")
    ax_stage.set_title("per stage (queue wait and work)")
    device = report.get("device", {})
    fig.suptitle(f"realtime {report.get('realtime_version', '')} · {report.get('input', {}).get('description', '')} · {device.get('gpu') or device.get('machine', '')}", fontsize=9)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
