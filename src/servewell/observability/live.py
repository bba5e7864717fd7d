"""The server's recent traffic, from its own metrics: what the dashboard's Live page
draws, with no Prometheus in between.

A :class:`LiveRing` reads the server's metrics registry every ``interval_s`` (the same
families ``/metrics`` renders: :meth:`ServingMetrics.collect`, so with ``--workers N``
every worker's files are merged as a scrape merges them) and keeps the cumulative
figures of the last ``window_s`` per model version (:class:`Reading`). Rates and
latency quantiles are the differences between consecutive readings
(:func:`points`): requests per second, p50 and p99 (estimated from the histogram's
buckets as Prometheus' ``histogram_quantile`` does), the error share by status code,
rows per model call, the cache's hit ratio; queue depth and breaker state are the
gauges as read. The ring holds at most ``window_s / interval_s`` readings, each of the
served versions only: bounded whatever the traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client.core import Metric

from servewell.observability.arm_stats import quantile
from servewell.observability.metrics import (
    BREAKER_STATES,
    CACHE,
    REQUEST_S,
    REQUESTS,
    ServingMetrics,
)

logger = logging.getLogger(__name__)

#: Seconds between readings, and how far back the ring reaches.
INTERVAL_S = 2.0
WINDOW_S = 600.0
#: Cache outcomes that answered from the cache.
CACHE_HITS = frozenset({"hit", "stale"})

Version = tuple[str, str]
"""A served model version's labels: (model, version)."""


@dataclass(slots=True)
class Reading:
    """One model version's cumulative figures at one instant."""

    by_status: dict[str, float] = field(default_factory=dict)
    """Requests answered, by status code (summed over the protocols)."""
    latency: dict[float, float] = field(default_factory=dict)
    """Request latency histogram: upper bound (s) -> cumulative count."""
    batch_rows: float = 0.0
    batch_calls: float = 0.0
    queue_depth: float | None = None
    breaker: int | None = None
    """0 closed, 1 half-open, 2 open (``servewell_breaker_state``)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every served version's reading, and the cache's lookups per model, at ``at``."""

    at: float
    versions: dict[Version, Reading]
    cache: dict[str, dict[str, float]]
    """Model -> outcome -> lookups."""


@dataclass(frozen=True, slots=True)
class LivePoint:
    """One model version over one interval (ending ``at``, seconds since the epoch)."""

    at: float
    requests: float
    """Answered in the interval (every worker's with ``--workers N``)."""
    requests_per_s: float
    p50_s: float | None
    p99_s: float | None
    """None when no request was answered in the interval."""
    error_rate: float | None
    """The share of answers with a 4xx or 5xx status."""
    errors_by_status: dict[str, float]
    """Status code -> its share of the interval's answers (4xx and 5xx only)."""
    batch_rows: float | None
    """Mean rows per model call in the interval."""
    cache_hit_ratio: float | None
    """Of the model's cache lookups in the interval (the cache is per model)."""
    queue_depth: float | None
    breaker: str | None


@dataclass(frozen=True, slots=True)
class LiveSeries:
    model: str
    version: str
    points: list[LivePoint]


def read_families(families: Iterable[Metric]) -> Snapshot:
    """A snapshot of the request, batch, queue, breaker and cache families."""
    versions: dict[Version, Reading] = {}
    cache: dict[str, dict[str, float]] = {}
    for family in families:
        for sample in family.samples:
            labels = sample.labels
            if sample.name == CACHE.name + "_total":
                outcomes = cache.setdefault(labels["model"], {})
                outcomes[labels["outcome"]] = outcomes.get(labels["outcome"], 0.0) + sample.value
                continue
            model, version = labels.get("model"), labels.get("version")
            if model and version and version.isdigit():
                reading = versions.setdefault((model, version), Reading())
                _add(reading, sample.name, labels, sample.value)
    return Snapshot(time.time(), versions, cache)


def _add(reading: Reading, name: str, labels: dict[str, str], value: float) -> None:
    if name == REQUESTS.name + "_total":
        status = labels["status"]
        reading.by_status[status] = reading.by_status.get(status, 0.0) + value
    elif name == REQUEST_S.name + "_bucket":
        bound = float(labels["le"])
        reading.latency[bound] = reading.latency.get(bound, 0.0) + value
    elif name == "servewell_batch_size_rows_sum":
        reading.batch_rows += value
    elif name == "servewell_batch_size_rows_count":
        reading.batch_calls += value
    elif name == "servewell_queue_depth_requests":
        reading.queue_depth = value
    elif name == "servewell_breaker_state":
        reading.breaker = int(value)


def point(before: Snapshot, after: Snapshot, key: Version) -> LivePoint:
    """``key``'s figures over the interval between two snapshots."""
    now = after.versions[key]
    old = before.versions.get(key, Reading())
    seconds = max(after.at - before.at, 1e-9)
    by_status = {
        status: count - old.by_status.get(status, 0.0) for status, count in now.by_status.items()
    }
    answered = sum(by_status.values())
    errors = {
        status: n / answered
        for status, n in by_status.items()
        if status[:1] in ("4", "5") and n > 0
    }
    latency = {bound: n - old.latency.get(bound, 0.0) for bound, n in now.latency.items()}
    calls = now.batch_calls - old.batch_calls
    return LivePoint(
        at=after.at,
        requests=answered,
        requests_per_s=answered / seconds,
        p50_s=_finite(quantile(0.5, latency)),
        p99_s=_finite(quantile(0.99, latency)),
        error_rate=sum(errors.values()) if answered else None,
        errors_by_status=errors,
        batch_rows=(now.batch_rows - old.batch_rows) / calls if calls > 0 else None,
        cache_hit_ratio=_hit_ratio(before.cache.get(key[0], {}), after.cache.get(key[0], {})),
        queue_depth=now.queue_depth,
        breaker=None if now.breaker is None else BREAKER_STATES[min(max(now.breaker, 0), 2)],
    )


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def _hit_ratio(before: dict[str, float], after: dict[str, float]) -> float | None:
    deltas = {outcome: n - before.get(outcome, 0.0) for outcome, n in after.items()}
    looked_up = sum(n for outcome, n in deltas.items() if outcome != "bypass")
    if looked_up <= 0:
        return None
    return sum(n for outcome, n in deltas.items() if outcome in CACHE_HITS) / looked_up


def points(snapshots: list[Snapshot]) -> list[LiveSeries]:
    """Per model version seen in the newest snapshot: a point per interval between
    consecutive snapshots (oldest first)."""
    if len(snapshots) < 2:
        return []
    keys = sorted(snapshots[-1].versions)
    found = []
    for key in keys:
        series = [
            point(before, after, key)
            for before, after in itertools.pairwise(snapshots)
            if key in after.versions
        ]
        found.append(LiveSeries(key[0], key[1], series))
    return found


class LiveRing:
    """The last ``window_s`` of readings of ``metrics``, one every ``interval_s``,
    taken on the running event loop once :meth:`start` is called."""

    def __init__(
        self, metrics: ServingMetrics, interval_s: float = INTERVAL_S, window_s: float = WINDOW_S
    ) -> None:
        self.metrics = metrics
        self.interval_s = interval_s
        self.window_s = window_s
        self._snapshots: deque[Snapshot] = deque(maxlen=max(2, int(window_s / interval_s) + 1))
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._forever(), name="servewell-live-ring"
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _forever(self) -> None:
        while True:
            try:
                await self.take()
            except Exception:  # a reading that failed is a gap in the chart, not a stop
                logger.warning("could not read the live metrics", exc_info=True)
            await asyncio.sleep(self.interval_s)

    async def take(self) -> Snapshot:
        """Read the metrics now (the tally flushed on the loop, the families read off
        it: with ``--workers N`` that reads every worker's files) and keep the reading."""
        self.metrics.tally.flush()
        snapshot = await asyncio.to_thread(lambda: read_families(self.metrics.scraped().collect()))
        self._snapshots.append(snapshot)
        return snapshot

    @property
    def snapshots(self) -> list[Snapshot]:
        return list(self._snapshots)

    def series(self, model: str | None = None) -> list[LiveSeries]:
        """Each version's points over the ring (``model``'s versions alone when given)."""
        found = points(self.snapshots)
        return [one for one in found if model is None or one.model == model]
