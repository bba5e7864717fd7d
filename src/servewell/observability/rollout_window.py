"""What a rollout's versions measured over one step, and the verdict on it.

A ``core.rollout.Window`` holds requests, errors (5xx answers, and requests the client
gave up on: 499) and latency counts per bucket
(those of ``metrics.LATENCY_BUCKETS_S``, +Inf last) of one version: what each serving
process reads of its own per-arm metrics (:func:`own_windows`), reports as the
difference since its last report, and what the lease holder sums over every process's
reports. :func:`judge` compares the candidate's sum with the primary's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from prometheus_client.core import Metric

from servewell.core.rollout import Bounds, Window
from servewell.observability.arm_stats import quantile
from servewell.observability.metrics import ARM_REQUESTS, ARM_S, ERROR_CLASSES, LATENCY_BUCKETS_S

#: The latency buckets' upper bounds, +Inf last: the order of ``Window.buckets``.
BUCKET_BOUNDS = (*map(float, LATENCY_BUCKETS_S), math.inf)
#: A p99 this close to the primary's is never a breach: under 10 ms the buckets are too
#: coarse (and a busy machine too noisy) for a ratio to mean anything.
P99_SLACK_S = 0.010


def p99_s(window: Window) -> float | None:
    """The 99th percentile of ``window``'s latencies, from its buckets."""
    cumulative, total = {}, 0
    for bound, count in zip(BUCKET_BOUNDS, window.buckets, strict=False):
        total += count
        cumulative[bound] = float(total)
    return quantile(0.99, cumulative)


def own_windows(families: Iterable[Metric], model: str) -> dict[int, Window]:
    """Per version of ``model``: the requests traffic policies routed to it, as this
    process counted them since it started (``ServingMetrics.own_families``)."""
    requests: dict[int, int] = {}
    errors: dict[int, int] = {}
    cumulative: dict[int, dict[float, float]] = {}
    for family in families:
        for sample in family.samples:
            labels = sample.labels
            if labels.get("model") != model or not labels.get("version", "").isdigit():
                continue
            version = int(labels["version"])
            if sample.name == ARM_REQUESTS.name + "_total":
                requests[version] = requests.get(version, 0) + int(sample.value)
                if labels.get("status_class") in ERROR_CLASSES:
                    errors[version] = errors.get(version, 0) + int(sample.value)
            elif sample.name == ARM_S.name + "_bucket":
                counts = cumulative.setdefault(version, {})
                bound = float(labels["le"])
                counts[bound] = counts.get(bound, 0.0) + sample.value  # summed over arms
    return {
        version: Window(count, errors.get(version, 0), _per_bucket(cumulative.get(version, {})))
        for version, count in requests.items()
    }


def _per_bucket(cumulative: dict[float, float]) -> tuple[int, ...]:
    counts, below = [], 0.0
    for bound in BUCKET_BOUNDS:
        total = cumulative.get(bound, below)
        counts.append(int(total - below))
        below = total
    return tuple(counts)


class Outcome(StrEnum):
    PROCEED = "proceed"
    WAIT = "wait"
    """Too few requests to judge yet."""
    ABORT = "abort"


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    detail: str
    """The numbers compared (or the requests still missing), for the events and status."""
    bound: str | None = None
    """Which bound the candidate broke: ``error_rate`` or ``p99`` (the metric's label)."""


def judge(primary: tuple[int, Window], candidate: tuple[int, Window], bounds: Bounds) -> Verdict:
    """Whether the candidate, measured beside the primary over one step, may take the
    next: (version, window) of each."""
    (p_version, p), (c_version, c) = primary, candidate
    short = [
        f"version {version} has {window.requests} of {bounds.min_requests}"
        for version, window in ((c_version, c), (p_version, p))
        if window.requests < bounds.min_requests
    ]
    if short:
        return Verdict(Outcome.WAIT, "too few requests to judge: " + ", ".join(short))
    p_rate, c_rate = p.errors / p.requests, c.errors / c.requests
    rates = (
        f"error rate {_percent(c_rate)} ({c.errors} of {c.requests}) on candidate {c_version} "
        f"vs {_percent(p_rate)} ({p.errors} of {p.requests}) on primary {p_version}"
    )
    if c_rate > p_rate + bounds.max_error_rate:
        return Verdict(
            Outcome.ABORT,
            f"{rates}: more than {_percent(bounds.max_error_rate)} above",
            "error_rate",
        )
    p_p99, c_p99 = p99_s(p) or 0.0, p99_s(c) or 0.0
    latencies = f"p99 {_ms(c_p99)} on candidate {c_version} vs {_ms(p_p99)} on primary {p_version}"
    if c_p99 > p_p99 * bounds.max_p99_ratio and c_p99 > p_p99 + P99_SLACK_S:
        return Verdict(
            Outcome.ABORT,
            f"{latencies}: more than {bounds.max_p99_ratio:g} times as slow",
            "p99",
        )
    return Verdict(Outcome.PROCEED, f"{rates}; {latencies}")


def _percent(rate: float) -> str:
    return f"{rate * 100:.1f}%"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"
