"""The server's Prometheus metrics, on a registry the caller owns.

Nothing is registered globally: :class:`ServingMetrics` is built on the
``CollectorRegistry`` it is given (one per app, so tests never clean up after each
other). With ``PROMETHEUS_MULTIPROC_DIR`` set, as ``servewell serve --workers N`` does,
prometheus_client writes every value to per-process files and :func:`render` merges
them, so one scrape sees all worker processes. The request path's counters and latency
histograms are tallied in plain dicts outside that mode (``tally.py``).

Every label is bounded: models and versions are the served ones, protocols and outcomes
fixed sets, status and error codes few; a rate-limit ``caller`` is a key's name or
``anonymous`` (never a client address: :meth:`ServingMetrics.count_rate_limit`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.core import Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from servewell.observability.tally import (
    ClientTally,
    Family,
    RequestTally,
    Tally,
    TallyCollector,
)

LATENCY_BUCKETS_S = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

CONTENT_TYPE = CONTENT_TYPE_LATEST
#: A circuit breaker's states, in the order of ``servewell_breaker_state``'s values.
BREAKER_STATES = ("closed", "half_open", "open")


def is_multiprocess() -> bool:
    """Whether values go to per-process files (``PROMETHEUS_MULTIPROC_DIR`` is set)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def forget_series(gauge: Gauge, *labels: str, unknown: float = 0.0) -> None:
    """A gauge's series gone (a version unloaded, a value no longer known). With
    ``--workers N`` it reads ``unknown`` instead: prometheus_client cannot remove a
    series from a worker's file (it would warn on stderr, outside the JSON log, at every
    call)."""
    gauge.labels(*labels).set(unknown)
    if not is_multiprocess():
        with contextlib.suppress(KeyError):
            gauge.remove(*labels)


class DeploymentMetrics:
    """The metrics of one served model version, with their labels bound once."""

    def __init__(self, metrics: ServingMetrics, model: str, version: str) -> None:
        labels = (model, version)
        self.compute_s = metrics.compute_s.labels(*labels)
        self.batch_size = metrics.batch_size.labels(*labels)
        self.queue_wait_s = metrics.queue_wait_s.labels(*labels)
        self.queue_depth = metrics.queue_depth.labels(*labels)
        self.load_s = metrics.load_s.labels(*labels)
        self.breaker_state = metrics.breaker_state.labels(*labels)
        self.breaker_transitions = tuple(
            metrics.breaker_transitions.labels(*labels, to) for to in BREAKER_STATES
        )
        """By the state moved to (0 closed, 1 half-open, 2 open)."""
        self.retries = metrics.retries.labels(*labels)
        self.expired_deadline = metrics.requests_expired.labels(*labels, "deadline")
        self.expired_disconnected = metrics.requests_expired.labels(*labels, "disconnected")
        self._restarts = metrics.restarts
        self._labels = labels

    def count_restart(self, reason: str) -> None:
        """The model's process ended and is being restarted (``reason``: crash, hang,
        start_failed); rare, and called off the event loop: straight to the counter."""
        self._restarts.labels(*self._labels, reason).inc()


#: The request path's families: tallied (``tally.py``) outside multiprocess mode.
REQUESTS = Family(
    "servewell_requests",
    "HTTP requests answered, by model, version, protocol and status code.",
    ("model", "version", "protocol", "status"),
)
REQUEST_S = Family(
    "servewell_request_duration_seconds",
    "Time from request to response, end to end.",
    ("model", "version", "protocol"),
    LATENCY_BUCKETS_S,
)
RATE_LIMIT = Family(
    "servewell_rate_limit_decisions",
    "Rate-limit decisions by caller (a key's name, never its secret; 'anonymous' for "
    "every caller without a key) and outcome (allowed, limited, degraded: the shared "
    "backend was down; over_budget: a key that spent its LLM budget).",
    ("caller", "outcome"),
)
CACHE = Family(
    "servewell_cache_requests",
    "Response cache lookups by model and outcome (hit, miss, bypass, stale: a miss the "
    "cache fallback answered with a stale answer).",
    ("model", "outcome"),
)

ARM_REQUESTS = Family(
    "servewell_arm_requests",
    "Requests a traffic policy routed, by model, arm (its target as the policy names "
    "it), the version that served it and status class (2xx, 4xx, 5xx; 499 on its own: "
    "the client gave up waiting).",
    ("model", "arm", "version", "status_class"),
)
ARM_S = Family(
    "servewell_arm_request_duration_seconds",
    "Time from request to response of requests a traffic policy routed, by arm.",
    ("model", "arm", "version"),
    LATENCY_BUCKETS_S,
)
SHADOW_DROPPED = Family(
    "servewell_shadow_dropped",
    "Copies of requests a model's shadow version never compared, by reason: full (its "
    "queue was full) or stopped (queued, or being computed, when the shadow stopped: a "
    "policy change or the server's shutdown).",
    ("model", "reason"),
)
#: A status code's class label, by its first digit.
STATUS_CLASSES = ("0xx", "1xx", "2xx", "3xx", "4xx", "5xx")
#: Status recorded when the client went away before it could be answered (nginx's).
CLIENT_CLOSED = 499
#: The arm status class of a request the client gave up on (CLIENT_CLOSED): apart from
#: 4xx, as a version that hangs makes them, so a rollout counts them as its errors.
CLIENT_CLOSED_CLASS = "499"
#: The arm status classes a rollout counts as a version's errors.
ERROR_CLASSES = frozenset({"5xx", CLIENT_CLOSED_CLASS})

ANONYMOUS = "anonymous"
"""The ``caller`` label of every caller without a key, whatever its address."""


class ServingMetrics:
    """Every metric the server exports.

    The request path's counts and latencies go to :attr:`tally`: plain dicts rendered by
    a collector at scrape time, or, with ``direct`` (by default: in multiprocess mode),
    prometheus_client's metric objects, which write every value to the worker's files.
    """

    def __init__(self, registry: CollectorRegistry, direct: bool | None = None) -> None:
        self.registry = registry
        self.direct = is_multiprocess() if direct is None else direct
        self._client_metrics: dict[Family, Counter | Histogram] = {}
        model_version = ("model", "version")
        self._register(REQUESTS)
        self._register(REQUEST_S)
        self._register(ARM_REQUESTS)
        self._register(ARM_S)
        self._register(SHADOW_DROPPED)
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
        self.requests_expired = Counter(
            "servewell_requests_expired",
            "Requests dropped from a model's queue before reaching the model, by reason: "
            "deadline (passed while waiting) or disconnected (the client went away).",
            (*model_version, "reason"),
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
        self.model_loaded = Gauge(
            "servewell_model_loaded",
            "1 for each model version loaded and serving (a default, a reference, a traffic "
            "arm or shadow, a fallback); its series goes once the version is unloaded.",
            model_version,
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.breaker_state = Gauge(
            "servewell_breaker_state",
            "A model version's circuit breaker: 0 closed, 1 half-open, 2 open (with "
            "--workers N, the worst worker's: each has its own breaker).",
            model_version,
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.breaker_transitions = Counter(
            "servewell_breaker_transitions",
            "Changes of state of a model version's circuit breaker, by the state moved to.",
            (*model_version, "to"),
            registry=registry,
        )
        self.retries = Counter(
            "servewell_retries",
            "Calls to a model made again after it failed (models.<name>.retries).",
            model_version,
            registry=registry,
        )
        self.restarts = Counter(
            "servewell_model_restarts",
            "Times a model's own process (isolation: process) ended and was restarted, by "
            "reason: crash (it ended, or was killed from outside), hang (killed after "
            "restart_after_timeouts deadlines in a row), start_failed (a restart failed).",
            ("model", "version", "reason"),
            registry=registry,
        )
        self.errors = Counter(
            "servewell_errors",
            "Requests that failed, by error code.",
            ("code",),
            registry=registry,
        )
        self._register(RATE_LIMIT)
        self._register(CACHE)
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
        self.fallbacks = Counter(
            "servewell_fallback",
            "Requests a model's fallback chain answered, by model, why the model did not "
            "(error, timeout, overloaded, unavailable, crashed) and who answered instead "
            "(name@version, cache, default; none: every target failed).",
            ("model", "reason", "target"),
            registry=registry,
        )
        self.predlog_dropped = Counter(
            "servewell_predlog_dropped",
            "Predictions the prediction log did not keep, by reason: full (its buffer was "
            "full: serving never waits) or write_failed (the database refused a batch).",
            ("reason",),
            registry=registry,
        )
        self.predlog_written = Counter(
            "servewell_predlog_written",
            "Predictions the prediction log wrote to the database.",
            registry=registry,
        )
        self.log_lines_dropped = Counter(
            "servewell_log_lines_dropped",
            "Log and access lines dropped because stdout was not being read and too much "
            "was waiting for it (the server never waits for its stdout).",
            registry=registry,
        )
        self._errors: dict[str, Counter] = {}
        self.tally: RequestTally = ClientTally(self._client_metrics) if self.direct else Tally()

    def _register(self, family: Family) -> None:
        """A tallied family on the registry, in the place the exposition lists it."""
        if self.direct:
            self._client_metrics[family] = family.client_metric(self.registry)
        else:  # the collector asks for the tally current at scrape time
            self.registry.register(TallyCollector(family, lambda: self.tally.snapshot()))

    def watch_in_flight(self, count: Callable[[], int]) -> bool:
        """Read the in-flight gauge from ``count`` at scrape time, where that is possible:
        True when it is not (multiprocess mode) and the caller must inc/dec it itself."""
        if is_multiprocess():
            return True
        self.in_flight.set_function(count)
        return False

    def for_deployment(self, model: str, version: int) -> DeploymentMetrics:
        return DeploymentMetrics(self, model, str(version))

    def mark_loaded(self, model: str, version: int) -> None:
        """A version loaded, warmed up and started (rare: straight to the gauge)."""
        self.model_loaded.labels(model, str(version)).set(1)

    def mark_unloaded(self, model: str, version: int) -> None:
        """A version left the served ones: its series goes (with ``--workers N``, it
        reads 0 in this worker's file, which prometheus_client keeps until it exits)."""
        forget_series(self.model_loaded, model, str(version))

    def observe_request(
        self, model: str, version: str, protocol: str, status: int, duration_s: float
    ) -> None:
        """Count one answered request and its latency."""
        tally = self.tally
        tally.count((REQUESTS, model, version, protocol, status))
        tally.observe((REQUEST_S, model, version, protocol), duration_s)

    def observe_arm(
        self, model: str, arm: str, version: str, status: int, duration_s: float
    ) -> None:
        """Count one request a traffic policy routed, and its latency, by arm."""
        tally = self.tally
        closed = status == CLIENT_CLOSED
        status_class = CLIENT_CLOSED_CLASS if closed else STATUS_CLASSES[min(status // 100, 5)]
        tally.count((ARM_REQUESTS, model, arm, version, status_class))
        tally.observe((ARM_S, model, arm, version), duration_s)

    def own_families(self, *families: Family) -> list[Metric]:
        """This process's own values of tallied ``families``, never merged with other
        workers' (what a canary rollout reports of its arms). On the writing thread."""
        self.tally.flush()
        found: list[Metric] = []
        for family in families:
            client = self._client_metrics.get(family)
            source = client or TallyCollector(family, self.tally.snapshot)
            found.extend(source.collect())
        return found

    def count_shadow_dropped(self, model: str, reason: str = "full") -> None:
        """A copy of a request for ``model``'s shadow dropped: its queue full (on the
        request path, so tallied; the rest of the shadow's metrics: shadow_metrics.py),
        or the shadow ``stopped`` before comparing it."""
        self.tally.count((SHADOW_DROPPED, model, reason))

    def count_rate_limit(self, caller: str, outcome: str) -> None:
        """One rate-limit decision. ``caller`` is a key's name or, without a key,
        ``ip:<address>`` (or any bucket name: a ``:`` is never in a key's name): every
        such caller is counted as :data:`ANONYMOUS`, so the label has one value per key
        and one more, however many addresses call."""
        label = ANONYMOUS if ":" in caller else caller
        self.tally.count((RATE_LIMIT, label, outcome))

    def count_cache(self, model: str, outcome: str) -> None:
        """One response cache lookup (hit, miss, bypass or stale)."""
        self.tally.count((CACHE, model, outcome))

    def count_fallback(self, model: str, reason: str, target: str) -> None:
        """One request the fallback chain took over (rare: straight to the counter)."""
        self.fallbacks.labels(model, reason, target).inc()

    def count_error(self, code: str) -> None:
        child = self._errors.get(code)
        if child is None:  # looked up once: ``labels()`` is slow
            child = self._errors[code] = self.errors.labels(code)
        child.inc()

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type."""  # flushed first
        self.tally.flush()
        return generate_latest(self.scraped()), CONTENT_TYPE

    def scraped(self) -> CollectorRegistry:
        """What a scrape reads: this registry, or every worker's files merged."""
        if not is_multiprocess():
            return self.registry
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return merged

    def close(self) -> None:
        """Write out what is tallied; forget this process's live gauges (multiprocess
        mode) as it exits."""
        self.tally.flush()
        if is_multiprocess():
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
