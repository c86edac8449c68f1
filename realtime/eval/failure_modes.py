"""Where a generator fails, as groups of ``realtime eval-swap``'s trials: each trial's conditions (the
target face's head turn, side light, blown highlights and skin tone, the source's skin tone), the
groups they and a person's hand labels (glasses, beard, dark skin) make, and a group's rates.
``bench/failure_modes.py`` runs the trials and draws the grids (docs/BENCHMARKS.md, failure modes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from realtime.eval.face_conditions import clipped_share, individual_typology_angle, side_light_stops, tone_band
from realtime.vision.landmarks import yaw_proxy

LIGHT_TONES, MEDIUM_TONES = ("very light", "light"), ("intermediate", "tan")


def conditions(images: dict[str, np.ndarray], found: dict[str, Any]) -> dict[str, float | None]:
    """The target face's turn, light and tone, and the source's tone (None where no face)."""
    target, source = found.get("target"), found.get("source")
    out: dict[str, float | None] = {"yaw": None, "side_light_stops": None, "clipped": None, "target_ita": None, "source_ita": None}
    if target is not None:
        image = images["target"]
        out.update(yaw=round(yaw_proxy(target), 3), side_light_stops=round(side_light_stops(image, target), 3),
                   clipped=round(clipped_share(image, target), 3), target_ita=round(individual_typology_angle(image, target), 1))
    if source is not None:
        out["source_ita"] = round(individual_typology_angle(images["source"], source), 1)
    return out


def group_tests(labels: dict[str, Any] | None, trials: int) -> dict[str, Callable[[dict[str, Any]], bool | None]]:
    """Each group's membership test on a trial (None: the trial cannot be placed). Trial i's target
    is the person who is trial i+1's source (eval-swap's cycle), so a person's label on a target
    also places the next trial's source."""

    def banded(key: str, bands: tuple[str, ...]) -> Callable[[dict[str, Any]], bool | None]:
        return lambda t: None if t.get(key) is None else tone_band(t[key]) in bands

    def numeric(key: str, test: Callable[[float], bool]) -> Callable[[dict[str, Any]], bool | None]:
        return lambda t: None if t.get(key) is None else test(t[key])

    tests: dict[str, Callable[[dict[str, Any]], bool | None]] = {
        "all": lambda t: True,
        "frontal (|yaw| < 0.15)": numeric("yaw", lambda v: abs(v) < 0.15),
        "turned (0.15 ≤ |yaw| < 0.3)": numeric("yaw", lambda v: 0.15 <= abs(v) < 0.3),
        "far turned (|yaw| ≥ 0.3)": numeric("yaw", lambda v: abs(v) >= 0.3),
        "even light (< 0.5 stop)": numeric("side_light_stops", lambda v: abs(v) < 0.5),
        "side light (0.5–1 stop)": numeric("side_light_stops", lambda v: 0.5 <= abs(v) < 1.0),
        "strong side light (≥ 1 stop)": numeric("side_light_stops", lambda v: abs(v) >= 1.0),
        "blown highlights (≥ 5% of the cheeks)": numeric("clipped", lambda v: v >= 0.05),
        "target light skin (ITA > 41°)": banded("target_ita", LIGHT_TONES),
        "target medium skin (10–41°)": banded("target_ita", MEDIUM_TONES),
        "target dark skin (ITA ≤ 10°)": banded("target_ita", ("brown", "dark")),
        "source light skin (ITA > 41°)": banded("source_ita", LIGHT_TONES),
        "source medium skin (10–41°)": banded("source_ita", MEDIUM_TONES),
        "source dark skin (ITA ≤ 10°)": banded("source_ita", ("brown", "dark")),
    }
    def listed(chosen: set[int], inside: bool) -> Callable[[dict[str, Any]], bool | None]:
        return lambda t: (t["trial"] in chosen) == inside

    for name in ("glasses", "beard"):
        if labels is not None and name in labels:
            chosen = set(labels[name])
            tests[f"target with {name}"] = listed(chosen, True)
            tests[f"target without {name}"] = listed(chosen, False)
    if labels is not None and "dark_skin" in labels:
        dark = set(labels["dark_skin"])
        tests["target dark skin (labelled)"] = lambda t: t["trial"] in dark
        tests["source dark skin (labelled)"] = lambda t: (t["trial"] - 1) % trials in dark
        tests["neither dark skin (labelled)"] = lambda t: t["trial"] not in dark and (t["trial"] - 1) % trials not in dark
    return tests


def summarise_group(members: list[dict[str, Any]]) -> dict[str, Any]:
    """Rates and means over a group's trials that were measured (a failed swap counts as missed)."""

    def mean(key: str) -> float | None:
        values = [t[key] for t in members if t.get(key) is not None]
        return round(float(np.mean(values)), 3) if values else None

    def rate(test: Callable[[dict[str, Any]], bool]) -> float | None:
        return round(float(np.mean([bool(test(t)) for t in members])), 3) if members else None

    judged = any(t.get("dlib_to_source") is not None for t in members)
    return {
        "trials": len(members),
        "ours_finds_source": rate(lambda t: t.get("ours_finds_source") is True),
        "dlib_finds_source": rate(lambda t: t.get("dlib_finds_source") is True) if judged else None,
        "dlib_source_photo_finds_source": rate(lambda t: t.get("dlib_source_photo_finds_source") is True) if judged else None,
        "dlib_calls_it_the_source": rate(lambda t: t.get("dlib_to_source") is not None and t["dlib_to_source"] < 0.6) if judged else None,
        "dlib_closer_to_source": rate(lambda t: t.get("dlib_to_source") is not None and t["dlib_to_source"] < t["dlib_to_target"]) if judged else None,
        "dlib_to_source": mean("dlib_to_source"),
        "ours_to_source": mean("ours_to_source"),
        "nme": mean("nme"),
    }


def slug(name: str) -> str:
    """A file name from a group's name: its words, without the thresholds (but keeping "labelled")."""
    words = name.split(" (")[0] + (" labelled" if "(labelled)" in name else "")
    return "".join(c if c.isalnum() else "-" for c in words).strip("-")
