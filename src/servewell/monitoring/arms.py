"""Each traffic arm's quality on the labelled predictions it answered (``servewell
traffic show``): the prediction log's rows of that arm joined with their feedback,
scored as ``servewell monitor`` scores a window (``monitoring/tally.py``,
``monitoring/quality.py``), read page by page (the log's scan, as ``monitor`` reads it);
only the labelled rows of routed requests are tallied.

An arm whose alias moved answered with more than one version: each version's rows are
read and scored by its own signature, and the arm's figure is their mean weighted by
rows scored (accuracy and MAE are means, so that is the figure of all its rows).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from servewell.monitoring.quality import headline, quality
from servewell.monitoring.run import check_model
from servewell.monitoring.tally import Tally
from servewell.registry import RegistryAccess
from servewell.registry.prediction_store import open_prediction_store
from servewell.registry.predictions import LoggedPrediction
from servewell.serving.prediction_reading import Readings


@dataclass(frozen=True, slots=True)
class ArmQuality:
    """One arm's labelled predictions since a moment, and the figure they score."""

    arm: str
    labelled: int
    """Predictions of the arm that have a label."""
    scored: int
    """Of those, the ones scored: a one-row answer the model gave (a label is one
    value; a response-cache hit has no outputs)."""
    metric: str
    """``accuracy`` (a classifier) or ``mae`` (a regressor)."""
    value: float | None
    """None: nothing scored."""


def arm_quality(access: RegistryAccess, name: str, since: datetime) -> dict[str, ArmQuality]:
    """Per arm of ``name`` that has labelled predictions logged since ``since``."""
    check_model(access, name)
    readings = Readings(access)
    tallies: dict[tuple[str, int], Tally] = {}
    for page in open_prediction_store(access).labelled(name, since):
        grouped: dict[tuple[str, int], list[LoggedPrediction]] = defaultdict(list)
        for row in page:
            if row.arm is not None and row.label is not None:
                grouped[(row.arm, row.version)].append(row)
        for key, rows in grouped.items():
            if key not in tallies:
                tallies[key] = Tally(readings.of(name, key[1]))
            tallies[key].add(rows)
    by_arm: dict[str, list[Tally]] = defaultdict(list)
    for (arm, _), tally in sorted(tallies.items()):
        by_arm[arm].append(tally)
    return {arm: _combined(arm, parts) for arm, parts in by_arm.items()}


def _combined(arm: str, tallies: list[Tally]) -> ArmQuality:
    """One arm's figure over its versions' tallies: their mean, weighted by rows scored."""
    metric, total, scored = "accuracy", 0.0, 0
    for tally in tallies:
        metric, value = headline(quality(tally))
        if value is not None:
            total += value * len(tally.truth)
            scored += len(tally.truth)
    labelled = sum(tally.labelled for tally in tallies)
    return ArmQuality(arm, labelled, scored, metric, total / scored if scored else None)
