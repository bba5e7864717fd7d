"""``monitor``: one model's window of logged predictions, read page by page from the
prediction log's store (the registry database or Parquet files), tallied per version,
arm and slice, and summarised."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from servewell.monitoring.reading import Reading, reading_of
from servewell.monitoring.summary import GroupReport, summarise
from servewell.monitoring.tally import Tally
from servewell.monitoring.window import Span
from servewell.registry import RegistryAccess
from servewell.registry.prediction_store import open_prediction_store
from servewell.registry.predictions import LoggedPrediction
from servewell.training.holdout import PROFILE_ROLE, read_attachment_json

#: How a version without a reference profile gets one.
HOW_TO_PROFILE = (
    "give it one with servewell profile NAME data.csv (a table of its inputs), or register "
    f"it with servewell train, which keeps the training data's profile ({PROFILE_ROLE})"
)


@dataclass
class MonitorReport:
    """A model's window: one :class:`GroupReport` per version and arm that answered."""

    model: str
    span: Span
    version: int | None
    groups: list[GroupReport] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        window = self.span.window
        start = self.span.start
        return {
            "model": self.model,
            "window": str(window),
            "window_kind": "rows" if window.rows is not None else "time",
            "start": None if start is None else start.isoformat(),
            "end": self.span.end.isoformat(),
            "version": self.version,
            "groups": [group.to_dict() for group in self.groups],
        }


def monitor(
    access: RegistryAccess,
    name: str,
    span: Span,
    *,
    version: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> MonitorReport:
    """``name``'s window (``version``'s alone when given); ``progress`` hears how many
    rows each page held."""
    readings = Readings(access, name)
    check_model(access, name, version)
    slices: dict[tuple[int, str | None], list[Tally]] = {}
    position = 0
    for page in open_prediction_store(access).scan(
        name, since=span.start, version=version, newest=span.newest
    ):
        grouped: dict[tuple[int, str | None, int], list[LoggedPrediction]] = defaultdict(list)
        for row in page:
            part = span.slice_of(row.logged_at.timestamp(), position)
            grouped[(row.version, row.arm, part)].append(row)
            position += 1
        for (number, arm, part), rows in grouped.items():
            if (number, arm) not in slices:
                reading = readings.of(number)
                slices[(number, arm)] = [Tally(reading) for _ in range(span.slices)]
            slices[(number, arm)][part].add(rows)
        if progress is not None:
            progress(len(page))
    groups = [
        summarise(number, arm, parts) for (number, arm), parts in sorted(slices.items(), key=_order)
    ]
    return MonitorReport(name, span, version, groups)


def check_model(access: RegistryAccess, name: str, version: int | None = None) -> None:
    """Refuse an unknown model or version (:class:`~servewell.errors.NotFound`) rather
    than report an empty window."""
    if version is not None:
        access.registry.get_version(name, version)
    else:
        access.registry.list_versions(name)


def _order(item: tuple[tuple[int, str | None], list[Tally]]) -> tuple[int, str]:
    (number, arm), _ = item
    return number, arm or ""


class Readings:
    """Each version's reading, built once (its profile fetched from the store)."""

    def __init__(self, access: RegistryAccess, name: str) -> None:
        self.access = access
        self.name = name
        self.found: dict[int, Reading] = {}

    def of(self, number: int) -> Reading:
        if number not in self.found:
            self.found[number] = self._build(number)
        return self.found[number]

    def _build(self, number: int) -> Reading:
        version = self.access.registry.get_version(self.name, number)
        profile = (
            read_attachment_json(self.access, version, PROFILE_ROLE)
            if version.has_artifact(PROFILE_ROLE)
            else None
        )
        log_inputs = self.access.settings.model(self.name).monitoring.log_inputs
        return reading_of(self.name, version.signature, profile, log_inputs, HOW_TO_PROFILE)
