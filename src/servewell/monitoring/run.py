"""``monitor``: one model's window of logged predictions, tallied per version, arm and
slice, and summarised: a time window from the stored window sketches
(``monitoring/sketched.py``) and its labelled rows, a window of rows (or ``rescan``)
from every logged row, read page by page from the prediction log's store (the registry
database or Parquet files)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from servewell.monitoring.sketched import Slices, sketched_slices, tallies
from servewell.monitoring.summary import GroupReport, summarise
from servewell.monitoring.tally import Tally
from servewell.monitoring.window import Span
from servewell.registry import RegistryAccess
from servewell.registry.prediction_store import open_prediction_store
from servewell.registry.predictions import LoggedPrediction
from servewell.serving.prediction_reading import Readings


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
    rescan: bool = False,
) -> MonitorReport:
    """``name``'s window (``version``'s alone when given): a time window from the stored
    window sketches and the labelled rows (``rescan``: from every logged row, as a
    window of rows always is); ``progress`` hears how many rows each step covered."""
    readings = Readings(access)
    check_model(access, name, version)
    if not rescan and _sketched(access, span):
        slices = sketched_slices(access, readings, name, span, version, progress)
    else:
        slices = _scanned_slices(access, readings, name, span, version, progress)
    groups = [
        summarise(number, arm, parts, name)
        for (number, arm), parts in sorted(slices.items(), key=_order)
    ]
    return MonitorReport(name, span, version, groups)


#: A time window shorter than this many sketch buckets is read from its rows: a window
#: covers whole buckets, which would stretch a short one (an alert rule's 10 s window
#: would see a minute), and a short window's rows are few.
SKETCHED_FROM_BUCKETS = 10


def _sketched(access: RegistryAccess, span: Span) -> bool:
    """Whether ``span`` is read from the window sketches (else from its rows)."""
    seconds = span.window.seconds
    bucket_s = access.settings.monitoring.sketch_bucket_s
    return seconds is not None and seconds >= SKETCHED_FROM_BUCKETS * bucket_s


def _scanned_slices(
    access: RegistryAccess,
    readings: Readings,
    name: str,
    span: Span,
    version: int | None,
    progress: Callable[[int], None] | None,
) -> Slices:
    """Every logged row of the window, page by page."""
    slices: Slices = {}
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
            tallies(slices, readings, name, span, number, arm)[part].add(rows)
        if progress is not None:
            progress(len(page))
    return slices


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
