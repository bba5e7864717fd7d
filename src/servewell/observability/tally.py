"""The request path's metrics, tallied in plain dicts and rendered at scrape time.

A prometheus_client ``labels().inc()`` or ``observe()`` takes a lock and checks its
arguments: ~0.5-1 µs each, several times a request. A :class:`Tally` costs a request a
dict lookup and a list update per metric (and a ``bisect`` for a latency); a
:class:`TallyCollector` per metric family, registered with prometheus_client's public
``registry.register``, renders those tallies as ``CounterMetricFamily`` /
``HistogramMetricFamily`` when the registry is scraped: the same names, types, labels,
help texts, buckets and ``_created`` series that prometheus_client's own ``Counter`` and
``Histogram`` would give.

Threads: the event loop writes the tallies; a scrape may run on another thread. The
writer never takes a lock. :meth:`Tally.flush`, called on the writer's thread (before
every scrape through ``ServingMetrics.render`` and once a second from
:meth:`Tally.flush_every`), copies the tallies and publishes the copy with one reference
assignment; a collector reads only published copies, which nothing changes after
publication. A scrape from another thread therefore sees every family as one flush
left it (a histogram's sum, count and buckets from the same instant; two families may
come from consecutive flushes), at most one flush interval behind. ``render`` flushes
and scrapes on the loop's thread, so there every family is from the same instant.

In multiprocess mode a scrape reads every worker's files and must not lag behind another
worker's tally: :class:`ClientTally` passes every call straight on to prometheus_client's
public metric objects, which write to those files.
"""

from __future__ import annotations

import bisect
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric


# eq=False: hashed by identity, which is cheap as a part of every tally key.
@dataclass(frozen=True, eq=False, slots=True)
class Family:
    """One tallied metric family: a counter, or a histogram when it has ``buckets``."""

    name: str
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()
    bounds: tuple[float, ...] = field(init=False)
    """The buckets' upper bounds, ``+Inf`` last (empty for a counter)."""

    def __post_init__(self) -> None:
        bounds = tuple(map(float, self.buckets))
        if bounds and bounds[-1] != math.inf:
            bounds += (math.inf,)
        object.__setattr__(self, "bounds", bounds)

    @property
    def is_histogram(self) -> bool:
        return bool(self.buckets)

    def client_metric(self, registry: CollectorRegistry) -> Counter | Histogram:
        """The prometheus_client metric object for this family, on ``registry``."""
        if self.is_histogram:
            return Histogram(
                self.name, self.help, self.labels, buckets=self.buckets, registry=registry
            )
        return Counter(self.name, self.help, self.labels, registry=registry)


#: A tallied series: its family, then its label values (``str()`` at scrape time).
Key = tuple[Any, ...]

#: Per family, in first-seen order: label values and ``[created, value]`` for a counter,
#: ``[created, sum, count in bucket 0, count in bucket 1, ...]`` for a histogram.
Snapshot = dict[Family, list[tuple[Key, list[float]]]]


class RequestTally(Protocol):
    """Where ``ServingMetrics`` puts the request path's counts and latencies."""

    def count(self, key: Key) -> None: ...

    def observe(self, key: Key, value: float) -> None: ...

    def snapshot(self) -> Snapshot:
        """What a scrape of this process renders."""

    def flush(self) -> None: ...

    def flush_every(self, interval_s: float = 1.0) -> None: ...

    def stop(self) -> None: ...


class Tally:
    """Counts and latencies in plain dicts, written on one thread (the event loop's).

    With ``direct`` nothing waits for a flush: every snapshot copies the live tallies,
    which is right only when the scrape runs on the writing thread too (tests,
    one-thread tools).
    """

    def __init__(self, direct: bool = False) -> None:
        self.direct = direct
        self._series: dict[Key, list[float]] = {}
        self._published: Snapshot = {}
        self._timer: Any = None

    def count(self, key: Key) -> None:
        entry = self._series.get(key)
        if entry is None:
            entry = self._series[key] = [time.time(), 0]
        entry[1] += 1

    def observe(self, key: Key, value: float) -> None:
        entry = self._series.get(key)
        bounds = key[0].bounds
        if entry is None:
            entry = self._series[key] = [time.time(), 0.0, *(0 for _ in bounds)]
        entry[1] += value
        entry[2 + bisect.bisect_left(bounds, value)] += 1  # le is inclusive: bisect_left

    def snapshot(self) -> Snapshot:
        return self._copy() if self.direct else self._published

    def flush(self) -> None:
        """Publish everything tallied so far for the scrape. Call it on the writing
        thread: the copy is made there, so it never sees half an update."""
        self._published = self._copy()

    def _copy(self) -> Snapshot:
        grouped: Snapshot = {}
        for key, entry in self._series.items():
            grouped.setdefault(key[0], []).append((key[1:], entry.copy()))
        return grouped

    def flush_every(self, interval_s: float = 1.0) -> None:
        """Flush on the running event loop every ``interval_s`` from now on."""
        import asyncio

        loop = asyncio.get_running_loop()

        def tick() -> None:
            self.flush()
            self._timer = loop.call_later(interval_s, tick)

        self._timer = loop.call_later(interval_s, tick)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.flush()


class ClientTally:
    """Every call straight to prometheus_client's metric objects, one per family (their
    label children looked up once: ``labels()`` is slow). Holds nothing to flush."""

    def __init__(self, metrics: dict[Family, Counter | Histogram]) -> None:
        self._metrics = metrics
        self._children: dict[Key, Any] = {}

    def count(self, key: Key) -> None:
        self._child(key).inc()

    def observe(self, key: Key, value: float) -> None:
        self._child(key).observe(value)

    def _child(self, key: Key) -> Any:
        child = self._children.get(key)
        if child is None:
            labels = [str(value) for value in key[1:]]
            child = self._children[key] = self._metrics[key[0]].labels(*labels)
        return child

    def snapshot(self) -> Snapshot:
        return {}  # the values are in the metric objects, which render themselves

    def flush(self) -> None:
        pass

    def flush_every(self, interval_s: float = 1.0) -> None:
        pass

    def stop(self) -> None:
        pass


class TallyCollector:
    """Renders one family from the snapshots ``source`` returns, as prometheus_client's
    ``Counter``/``Histogram`` would (``PROMETHEUS_DISABLE_CREATED_SERIES`` drops the
    ``_created`` series, as it does there)."""

    def __init__(self, family: Family, source: Callable[[], Snapshot]) -> None:
        self.family = family
        self.source = source
        self._le = _bucket_labels(family.buckets) if family.is_histogram else []

    def describe(self) -> list[Metric]:
        """The family without samples: the registry refuses a second one of its name."""
        return [self._empty()]

    def collect(self) -> list[Metric]:
        family = self._empty()
        with_created = _created_series_wanted()
        for key, entry in self.source().get(self.family, ()):
            labels = [str(value) for value in key]
            if isinstance(family, HistogramMetricFamily):
                self._add_histogram(family, labels, entry, with_created)
            else:
                family.add_metric(labels, entry[1], created=entry[0] if with_created else None)
        return [family]

    def _add_histogram(
        self,
        family: HistogramMetricFamily,
        labels: Sequence[str],
        entry: list[float],
        with_created: bool,
    ) -> None:
        cumulative, buckets = 0.0, []
        for le, observed in zip(self._le, entry[2:], strict=True):
            cumulative += observed
            buckets.append((le, cumulative))
        family.add_metric(labels, buckets, entry[1])
        if with_created:
            names = dict(zip(self.family.labels, labels, strict=True))
            family.add_sample(self.family.name + "_created", names, entry[0])

    def _empty(self) -> CounterMetricFamily | HistogramMetricFamily:
        family = self.family
        if family.is_histogram:
            return HistogramMetricFamily(family.name, family.help, labels=family.labels)
        return CounterMetricFamily(family.name, family.help, labels=family.labels)


def _bucket_labels(buckets: Sequence[float]) -> list[str]:
    """The ``le`` label of each bucket, ``+Inf`` last, exactly as prometheus_client writes
    it (Go's float format), asked of a throwaway, unregistered ``Histogram``."""
    probe = Histogram("probe", "", buckets=buckets, registry=None)
    (metric,) = probe.collect()
    return [sample.labels["le"] for sample in metric.samples if sample.name.endswith("_bucket")]


def _created_series_wanted() -> bool:
    """prometheus_client's own switch for the ``_created`` series."""
    flag = os.environ.get("PROMETHEUS_DISABLE_CREATED_SERIES", "false")
    return flag.lower() not in ("true", "1", "t")
