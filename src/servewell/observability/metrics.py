"""The server's Prometheus metrics, on a registry the caller owns.

Nothing is registered globally: :class:`ServingMetrics` is built on the
``CollectorRegistry`` it is given (one per app, so tests never clean up after each
other). With ``PROMETHEUS_MULTIPROC_DIR`` set, as ``servewell serve --workers N`` does,
prometheus_client writes every value to per-process files and :func:`render` merges
them, so one scrape sees all worker processes.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

LATENCY_BUCKETS_S = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

CONTENT_TYPE = CONTENT_TYPE_LATEST


def is_multiprocess() -> bool:
    """Whether values go to per-process files (``PROMETHEUS_MULTIPROC_DIR`` is set)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class DeploymentMetrics:
    """The metrics of one served model version, with their labels bound once."""

    def __init__(self, metrics: ServingMetrics, model: str, version: str) -> None:
        labels = (model, version)
        self.compute_s = metrics.compute_s.labels(*labels)
        self.batch_size = metrics.batch_size.labels(*labels)
        self.queue_wait_s = metrics.queue_wait_s.labels(*labels)
        self.queue_depth = metrics.queue_depth.labels(*labels)
        self.load_s = metrics.load_s.labels(*labels)


class ServingMetrics:
    """Every metric the server exports."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        model_version = ("model", "version")
        self.requests = Counter(
            "servewell_requests",
            "HTTP requests answered, by model, version, protocol and status code.",
            ("model", "version", "protocol", "status"),
            registry=registry,
        )
        self.request_s = Histogram(
            "servewell_request_duration_seconds",
            "Time from request to response, end to end.",
            ("model", "version", "protocol"),
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.compute_s = Histogram(
            "servewell_model_compute_seconds",
            "Time the model took on one batch.",
            model_version,
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.batch_size = Histogram(
            "servewell_batch_size_rows",
            "Rows in one model call.",
            model_version,
            buckets=BATCH_SIZE_BUCKETS,
            registry=registry,
        )
        self.queue_wait_s = Histogram(
            "servewell_queue_wait_seconds",
            "Time a request waited in its model's queue.",
            model_version,
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.queue_depth = Gauge(
            "servewell_queue_depth_requests",
            "Requests waiting in a model's queue.",
            model_version,
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.in_flight = Gauge(
            "servewell_requests_in_flight",
            "HTTP requests being handled now.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.load_s = Gauge(
            "servewell_model_load_seconds",
            "Time loading and warming up a model version took.",
            model_version,
            multiprocess_mode="max",
            registry=registry,
        )
        self.errors = Counter(
            "servewell_errors",
            "Requests that failed, by error code.",
            ("code",),
            registry=registry,
        )
        self.rate_limit = Counter(
            "servewell_rate_limit_decisions",
            "Rate-limit decisions by caller (a key's name, never its secret) and outcome "
            "(allowed, limited, degraded: the shared backend was down).",
            ("caller", "outcome"),
            registry=registry,
        )
        self.cache = Counter(
            "servewell_cache_requests",
            "Response cache lookups by model and outcome (hit, miss, bypass).",
            ("model", "outcome"),
            registry=registry,
        )
        self.cache_evictions = Counter(
            "servewell_cache_evictions",
            "Entries the in-process response cache evicted to stay within its byte budget.",
            registry=registry,
        )
        self.output_filter = Counter(
            "servewell_output_filter_findings",
            "Personal data found in model outputs, by model, kind and policy applied.",
            ("model", "kind", "policy"),
            registry=registry,
        )
        self._request_children: dict[tuple[str, str, str, int], tuple[Counter, Histogram]] = {}
        self._children: dict[tuple[object, ...], Counter] = {}
        self.tally = Tally(direct=is_multiprocess())

    def watch_in_flight(self, count: Callable[[], int]) -> bool:
        """Read the in-flight gauge from ``count`` at scrape time, where that is possible:
        True when it is not (multiprocess mode) and the caller must inc/dec it itself."""
        if is_multiprocess():
            return True
        self.in_flight.set_function(count)
        return False

    def for_deployment(self, model: str, version: int) -> DeploymentMetrics:
        return DeploymentMetrics(self, model, str(version))

    def observe_request(
        self, model: str, version: str, protocol: str, status: int, duration_s: float
    ) -> None:
        """Count one answered request and its latency."""
        key = (model, version, protocol, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.requests.labels(model, version, protocol, str(status)),
                self.request_s.labels(model, version, protocol),
            )
            self._request_children[key] = children
        self.tally.count(children[0])
        self.tally.observe(children[1], duration_s)

    def count_rate_limit(self, caller: str, outcome: str) -> None:
        self.tally.count(self._child(self.rate_limit, caller, outcome))

    def count_cache(self, model: str, outcome: str) -> None:
        """One response cache lookup (hit, miss or bypass)."""
        self.tally.count(self._child(self.cache, model, outcome))

    def count_error(self, code: str) -> None:
        self._child(self.errors, code).inc()

    def _child(self, counter: Counter, *labels: str) -> Counter:
        """The counter's child for these labels, looked up once (``labels()`` is slow)."""
        key = (id(counter), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = counter.labels(*labels)
        return child

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type."""
        self.tally.flush()
        if is_multiprocess():
            from prometheus_client import multiprocess

            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return generate_latest(merged), CONTENT_TYPE
        return generate_latest(self.registry), CONTENT_TYPE

    def close(self) -> None:
        """Write out what is tallied; forget this process's live gauges (multiprocess
        mode) as it exits."""
        self.tally.flush()
        if is_multiprocess():
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


class Tally:
    """Counts and latencies of the request path, gathered in plain dicts and moved into
    their Prometheus children in bulk.

    A prometheus_client ``inc`` or ``observe`` takes a lock and checks its arguments:
    ~0.5-1 µs each, several times a request. Here a request costs a dict update (and a
    ``bisect`` for a latency); :meth:`flush` adds the totals to the children before
    every scrape of this process and, from :meth:`flush_every`, once a second. With
    ``direct`` (multiprocess mode: a scrape reads every worker's files, and must not lag
    behind another worker's tally) it passes every call straight on. Used from the event
    loop's thread only, like the request path.
    """

    def __init__(self, direct: bool = False) -> None:
        self.direct = direct
        self._counts: dict[Any, int] = {}
        self._latencies: dict[Any, list[float]] = {}
        """Histogram child -> [sum, count in bucket 0, count in bucket 1, ...]."""
        self._timer: Any = None

    def count(self, child: Counter) -> None:
        if self.direct:
            child.inc()
            return
        counts = self._counts
        counts[child] = counts.get(child, 0) + 1

    def observe(self, child: Histogram, value: float) -> None:
        if self.direct:
            child.observe(value)
            return
        pending = self._latencies.get(child)
        if pending is None:
            bounds = child._upper_bounds
            pending = self._latencies[child] = [0.0] * (len(bounds) + 1)
        pending[0] += value
        pending[1 + bisect.bisect_left(child._upper_bounds, value)] += 1

    def flush(self) -> None:
        """Add everything tallied so far to the Prometheus children."""
        counts, self._counts = self._counts, {}
        latencies, self._latencies = self._latencies, {}
        for counter, amount in counts.items():
            counter.inc(amount)
        for histogram, pending in latencies.items():
            # What Histogram.observe does, for many observations at once.
            histogram._sum.inc(pending[0])
            for bucket, observed in zip(histogram._buckets, pending[1:], strict=False):
                if observed:
                    bucket.inc(observed)

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
