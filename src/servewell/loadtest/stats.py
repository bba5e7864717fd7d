"""What a load test measured: latencies in an HDR-style histogram, answers by status,
and a per-second timeline, for each step.

The histogram's buckets grow by 1 % from 1 µs to 1000 s (about 2,100 buckets), so any
quantile is read within 1 % of the true latency with bounded memory however many
requests ran; the maximum is kept exactly. The hot path only appends a latency to a
list and counts a status; :meth:`StepRecorder.flush` (once a second) moves the
latencies into the histogram with numpy and appends the second to the timeline.

An open-loop request also gives how late the client sent it (its actual send time less
its intended one: the wait for a free connection or for the event loop): its latency
*from that send* (what wrk2's ``-U`` reports) and that lateness go to two more
histograms. Closed-loop steps have no intended time, so no such figures (None).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]

MIN_S = 1e-6
MAX_S = 1000.0
GROWTH = 1.01
_LOG_GROWTH = math.log(GROWTH)
BUCKETS = int(math.log(MAX_S / MIN_S) / _LOG_GROWTH) + 2
#: Upper edge of each bucket, in seconds.
EDGES_S: Array = MIN_S * GROWTH ** np.arange(1, BUCKETS + 1)

#: The quantiles each step reports, by name.
QUANTILES: dict[str, float] = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "p99.9": 0.999}

#: The status of a request that got no HTTP answer (refused, reset, timed out).
NO_ANSWER = 0

#: The client fell behind when its lateness p99 passes this *and* the step's p50 from
#: the actual sends. The dispatcher sleeps on 1 ms timer steps and a busy machine adds
#: a few ms of scheduling, so a few ms late is the design, not a fault; 10 ms is well
#: past that. And a wait shorter than a typical answer does not change the picture of a
#: slow server (a 100 ms model with 20 ms of lateness is measured well enough; a 1 ms
#: one is not). The p50 from the sends, not the corrected one: that holds the wait.
LATE_FLOOR_MS = 10.0


class LatencyHistogram:
    """Counts of latencies in log-spaced buckets (1 % wide), and the exact maximum."""

    def __init__(self) -> None:
        self.counts: Array = np.zeros(BUCKETS, dtype=np.int64)
        self.max_s = 0.0

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def add(self, latencies_s: Array) -> None:
        if latencies_s.size == 0:
            return
        clipped = np.clip(latencies_s, MIN_S, MAX_S)
        index = np.floor(np.log(clipped / MIN_S) / _LOG_GROWTH).astype(np.int64)
        self.counts += np.bincount(np.clip(index, 0, BUCKETS - 1), minlength=BUCKETS)
        self.max_s = max(self.max_s, float(latencies_s.max()))

    def merge(self, other: LatencyHistogram) -> None:
        self.counts += other.counts
        self.max_s = max(self.max_s, other.max_s)

    def quantile_s(self, q: float) -> float:
        """The latency ``q`` of the requests stayed at or below (the bucket's upper edge,
        never above the maximum seen); 0 without requests."""
        total = self.total
        if total == 0:
            return 0.0
        cumulative = np.cumsum(self.counts)
        index = int(np.searchsorted(cumulative, q * total, side="left"))
        return min(float(EDGES_S[min(index, BUCKETS - 1)]), self.max_s)

    def buckets(self) -> dict[str, list[float]]:
        """The non-empty buckets: upper edges in ms and counts (for a plot)."""
        present = np.nonzero(self.counts)[0]
        return {
            "upper_ms": [float(EDGES_S[i] * 1000) for i in present],
            "counts": [int(self.counts[i]) for i in present],
        }


@dataclass
class StepRecorder:
    """Everything one step measured; :meth:`record` is the hot path."""

    label: str
    started_at: float
    """``time.perf_counter()`` at the step's start (the timeline counts from it)."""
    histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    statuses: dict[int, int] = field(default_factory=dict)
    """Answers to valid bodies, by status (0: no answer)."""
    invalid_statuses: dict[int, int] = field(default_factory=dict)
    """Answers to the deliberately invalid bodies, by status."""
    versions: dict[str, int] = field(default_factory=dict)
    """How many answers named each version (``X-Servewell-Version``)."""
    timeline: list[dict[str, float]] = field(default_factory=list)
    from_send: LatencyHistogram = field(default_factory=LatencyHistogram)
    """Open loop: latencies from each request's actual send (empty in a closed loop)."""
    sent_late: LatencyHistogram = field(default_factory=LatencyHistogram)
    """Open loop: how late each request was sent (actual less intended send time)."""
    _pending: list[float] = field(default_factory=list)
    _pending_from_send: list[float] = field(default_factory=list)
    _pending_late: list[float] = field(default_factory=list)
    _pending_errors: int = 0

    def record(
        self,
        latency_s: float,
        status: int,
        invalid: bool,
        version: str | None,
        late_s: float | None = None,
    ) -> None:
        """One answer: ``latency_s`` from the intended send (the actual one in a closed
        loop); ``late_s``, in an open loop, how late the request was actually sent."""
        if invalid:
            self.invalid_statuses[status] = self.invalid_statuses.get(status, 0) + 1
            return
        self._pending.append(latency_s)
        if late_s is not None:
            self._pending_late.append(late_s)
            self._pending_from_send.append(latency_s - late_s)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if not 200 <= status < 300:
            self._pending_errors += 1
        if version is not None:
            self.versions[version] = self.versions.get(version, 0) + 1

    def flush(self, now: float) -> dict[str, float]:
        """Move the latencies of the last interval into the histogram; the interval's
        point of the timeline (seconds since the step's start, requests, p50, p99)."""
        latencies = np.asarray(self._pending, dtype=np.float64)
        self._pending = []
        point = {
            "t_s": now - self.started_at,
            "requests": float(latencies.size),
            "errors": float(self._pending_errors),
            "p50_ms": float(np.quantile(latencies, 0.5) * 1000) if latencies.size else 0.0,
            "p99_ms": float(np.quantile(latencies, 0.99) * 1000) if latencies.size else 0.0,
        }
        self._pending_errors = 0
        self.histogram.add(latencies)
        self.from_send.add(np.asarray(self._pending_from_send, dtype=np.float64))
        self.sent_late.add(np.asarray(self._pending_late, dtype=np.float64))
        self._pending_from_send, self._pending_late = [], []
        self.timeline.append(point)
        return point

    @property
    def requests(self) -> int:
        """Valid requests answered (or failed) so far, flushed or not."""
        return sum(self.statuses.values())


@dataclass(frozen=True)
class StepResult:
    """One step's figures, as the report, the SLO and the registry read them."""

    label: str
    target: dict[str, float]
    """What the step asked for: ``{"concurrency": 16}`` or ``{"rate_per_s": 500}``."""
    duration_s: float
    requests: int
    invalid_requests: int
    throughput_rps: float
    """Valid requests answered a second, any status (status 0, no answer, is none)."""
    latency_ms: dict[str, float]
    errors: dict[str, int]
    """Valid requests that did not get a 2xx, by status (``"0"``: no answer)."""
    invalid_statuses: dict[str, int]
    versions: dict[str, int]
    histogram: dict[str, list[float]]
    timeline: list[dict[str, float]]
    latency_from_send_ms: dict[str, float] | None = None
    """Open loop: latency quantiles from each request's actual send (wrk2's ``-U``)."""
    sent_late_ms: dict[str, float] | None = None
    """Open loop: quantiles of how late the client sent each request."""

    @property
    def client_fell_behind(self) -> bool | None:
        """Whether the client sent so late that its latencies are its own wait more than
        the server's (see :data:`LATE_FLOOR_MS`); None in a closed loop."""
        if self.sent_late_ms is None:
            return None
        from_send_p50 = self.latency_from_send_ms["p50"] if self.latency_from_send_ms else 0.0
        return self.sent_late_ms["p99"] > max(LATE_FLOOR_MS, from_send_p50)

    @property
    def error_rate(self) -> float:
        return sum(self.errors.values()) / self.requests if self.requests else 0.0

    @property
    def invalid_not_4xx(self) -> int:
        """Invalid bodies answered with anything but a 4xx (a 5xx, a 2xx, no answer)."""
        return sum(n for status, n in self.invalid_statuses.items() if not status.startswith("4"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "target": self.target,
            "duration_s": self.duration_s,
            "requests": self.requests,
            "invalid_requests": self.invalid_requests,
            "throughput_rps": self.throughput_rps,
            "latency_ms": self.latency_ms,
            "latency_from_send_ms": self.latency_from_send_ms,
            "sent_late_ms": self.sent_late_ms,
            "client_fell_behind": self.client_fell_behind,
            "error_rate": self.error_rate,
            "errors": self.errors,
            "invalid_statuses": self.invalid_statuses,
            "invalid_not_4xx": self.invalid_not_4xx,
            "versions": self.versions,
            "histogram": self.histogram,
            "timeline": self.timeline,
        }


def step_result(recorder: StepRecorder, target: dict[str, float], duration_s: float) -> StepResult:
    """The figures of a finished step (its recorder flushed)."""
    open_loop = "rate_per_s" in target
    requests = recorder.requests
    # what was answered, whatever the status (as wrk counts): an open loop's requests
    # never answered are no throughput, or an "rps>" objective could never fail there
    answered = requests - recorder.statuses.get(NO_ANSWER, 0)
    return StepResult(
        label=recorder.label,
        target=target,
        duration_s=duration_s,
        requests=requests,
        invalid_requests=sum(recorder.invalid_statuses.values()),
        throughput_rps=answered / duration_s if duration_s > 0 else 0.0,
        latency_ms=quantiles_ms(recorder.histogram),
        errors={str(s): n for s, n in sorted(recorder.statuses.items()) if not 200 <= s < 300},
        invalid_statuses={str(s): n for s, n in sorted(recorder.invalid_statuses.items())},
        versions=dict(recorder.versions),
        histogram=recorder.histogram.buckets(),
        timeline=recorder.timeline,
        latency_from_send_ms=quantiles_ms(recorder.from_send) if open_loop else None,
        sent_late_ms=quantiles_ms(recorder.sent_late) if open_loop else None,
    )


def quantiles_ms(histogram: LatencyHistogram) -> dict[str, float]:
    """The reported quantiles and the maximum of ``histogram``, in ms."""
    figures = {name: histogram.quantile_s(q) * 1000 for name, q in QUANTILES.items()}
    figures["max"] = histogram.max_s * 1000
    return figures
