"""A traffic policy's arms as a running server measured them, read back from its
``/metrics`` text (``servewell traffic show --server``): requests, error rate and
latency quantiles per arm, since the server started (or since its workers did).

Quantiles are estimated from the histogram's buckets as Prometheus'
``histogram_quantile`` does: linearly inside the bucket the rank falls in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ArmStats:
    arm: str
    versions: tuple[str, ...]
    """The versions that answered for the arm (two once its alias moved)."""
    requests: int
    errors: int
    """Answers with a 5xx status (the caller's own 4xx mistakes are not the arm's)."""
    p50_s: float | None
    p99_s: float | None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


def arm_stats(metrics_text: str, model: str) -> dict[str, ArmStats]:
    """Per arm of ``model``: what ``servewell_arm_*`` in ``metrics_text`` add up to."""
    from prometheus_client.parser import text_string_to_metric_families

    requests: dict[str, int] = {}
    errors: dict[str, int] = {}
    versions: dict[str, set[str]] = {}
    buckets: dict[str, dict[float, float]] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            labels = sample.labels
            if labels.get("model") != model or "arm" not in labels:
                continue
            arm = labels["arm"]
            if sample.name == "servewell_arm_requests_total":
                requests[arm] = requests.get(arm, 0) + int(sample.value)
                if labels.get("status_class") == "5xx":
                    errors[arm] = errors.get(arm, 0) + int(sample.value)
                versions.setdefault(arm, set()).add(labels.get("version", "?"))
            elif sample.name == "servewell_arm_request_duration_seconds_bucket":
                bound = float(labels["le"])
                counts = buckets.setdefault(arm, {})
                counts[bound] = counts.get(bound, 0.0) + sample.value  # summed over versions
    return {
        arm: ArmStats(
            arm,
            tuple(sorted(versions.get(arm, ()))),
            count,
            errors.get(arm, 0),
            quantile(0.5, buckets.get(arm, {})),
            quantile(0.99, buckets.get(arm, {})),
        )
        for arm, count in requests.items()
    }


def quantile(q: float, cumulative: dict[float, float]) -> float | None:
    """The ``q`` quantile of a histogram given as upper bound -> cumulative count."""
    bounds = sorted(cumulative)
    if not bounds or cumulative[bounds[-1]] <= 0:
        return None
    rank = q * cumulative[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = cumulative[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower  # past the last finite bucket: its bound is all we know
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 0.0)
        lower, below = bound, count
    return lower
