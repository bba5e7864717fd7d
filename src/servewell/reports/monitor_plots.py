"""The monitoring page's figures, from a monitoring report's JSON form (one version and
arm's ``group``): quality, drift and latency per slice over time, and the predictions
against the reference's. Drawn as :mod:`servewell.reports.plots` draws (object API)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from servewell.reports.plots import BLUE, GREY, ORANGE

#: Features a drift-over-time figure draws at most (those that drifted most).
DRIFT_LINES = 8
PSI_THRESHOLD = 0.1
GREEN = "#16a34a"


def quality_plot(group: dict[str, Any]) -> Figure | None:
    """Accuracy (a regressor's MAE) per slice, where the slice had labels."""
    slices = group["slices"]
    points = [(i, s["value"]) for i, s in enumerate(slices) if s["value"] is not None]
    if not points:
        return None
    figure, axes = _over_time(slices, f"{slices[0]['metric'].capitalize()} per slice")
    axes.plot([i for i, _ in points], [v for _, v in points], color=BLUE, marker="o")
    axes.set_ylabel(slices[0]["metric"])
    if slices[0]["metric"] == "accuracy":
        axes.set_ylim(0, 1.02)
    return figure


def drift_plot(group: dict[str, Any]) -> Figure | None:
    """Each feature's PSI per slice (the most drifted ones), the threshold dashed."""
    slices = group["slices"]
    names = {name for s in slices for name in s["psi"]}
    if not names:
        return None
    peak = {name: max((s["psi"].get(name) or 0.0) for s in slices) for name in names}
    shown = sorted(names, key=lambda name: -peak[name])[:DRIFT_LINES]
    figure, axes = _over_time(slices, "Drift (PSI) per feature")
    for name in shown:
        values = [s["psi"].get(name) for s in slices]
        axes.plot(
            range(len(slices)), [np.nan if v is None else v for v in values], marker="o", label=name
        )
    if any(s["prediction_psi"] is not None for s in slices):
        values = [s["prediction_psi"] for s in slices]
        axes.plot(
            range(len(slices)),
            [np.nan if v is None else v for v in values],
            color="black",
            linestyle=":",
            marker="o",
            label="(prediction)",
        )
    axes.axhline(PSI_THRESHOLD, color=GREY, linestyle="--", label="threshold")
    axes.set_ylabel("PSI")
    axes.legend(loc="upper left", fontsize="small", ncol=2)
    return figure


def latency_plot(group: dict[str, Any]) -> Figure | None:
    slices = [s for s in group["slices"] if s["latency_ms"]]
    if not slices:
        return None
    figure, axes = _over_time(slices, "Latency percentiles per slice")
    for key, color in (("p50", BLUE), ("p95", ORANGE), ("p99", GREEN)):
        axes.plot(
            range(len(slices)),
            [s["latency_ms"][key] for s in slices],
            color=color,
            marker="o",
            label=key,
        )
    axes.set_ylabel("ms")
    axes.legend(loc="upper left", fontsize="small")
    return figure


def prediction_plot(group: dict[str, Any]) -> Figure | None:
    """The window's predictions against the training reference's, share per bin."""
    found = group["drift"]["prediction_distribution"]
    if not found:
        return None
    bins = [str(name)[:14] for name in found["bins"]][:20]
    positions = np.arange(len(bins))
    figure = Figure(figsize=(max(4.2, 0.5 * len(bins) + 2), 3.4))
    axes = figure.add_subplot()
    width = 0.4
    axes.bar(positions - width / 2, found["reference"][:20], width, color=GREY, label="training")
    axes.bar(positions + width / 2, found["window"][:20], width, color=BLUE, label="window")
    axes.set_xticks(positions, bins, rotation=45 if len(bins) > 6 else 0, ha="right")
    axes.set_ylabel("share")
    axes.set_title("Predictions against the reference")
    axes.legend(loc="upper right", fontsize="small")
    return figure


def _over_time(slices: Sequence[dict[str, Any]], title: str) -> tuple[Figure, Any]:
    figure = Figure(figsize=(6.4, 3.2))
    axes = figure.add_subplot()
    times = [s["first_at"] or "" for s in slices]
    one_day = len({at[:10] for at in times}) == 1
    labels = [at[11:16] if one_day else at[5:16].replace("T", " ") for at in times]
    step = max(1, -(-len(labels) // 5))
    axes.set_xticks(range(0, len(labels), step), labels[::step], fontsize=7)
    axes.set_xlim(-0.3, max(len(labels) - 0.7, 0.3))
    axes.set_title(title)
    return figure, axes
