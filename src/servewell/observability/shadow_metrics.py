"""The shadow traffic's metrics (``serving/shadow.py``): counted off the request path,
by the shadow's own task, so they go straight to prometheus_client's objects
(per-process files in multiprocess mode), each label set looked up once. The one count
made on the request path, a copy dropped because the queue was full, is tallied with
the request metrics (``ServingMetrics.count_shadow_dropped``).

Agreement is two counters rather than a ratio gauge (ratios of counters add up across
workers and replicas; gauges do not): the share of rows that agree is
``sum(rate(servewell_shadow_comparisons_total{agree="true"}[5m])) /
sum(rate(servewell_shadow_comparisons_total[5m]))``, and ``servewell traffic show
--server`` prints it since the server started.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from servewell.observability.metrics import LATENCY_BUCKETS_S, ServingMetrics

#: Largest difference between the two ``probabilities`` of one row.
PROBABILITY_DIFF_BUCKETS = (1e-6, 1e-4, 1e-3, 0.01, 0.05, 0.1, 0.2, 0.5, 1.0)


class ShadowMetrics:
    def __init__(self, serving: ServingMetrics) -> None:
        registry = serving.registry
        self.count_dropped = serving.count_shadow_dropped
        self.comparisons = Counter(
            "servewell_shadow_comparisons",
            "Rows answered by both a model's primary version and its shadow, by whether "
            "they agree (the same label; other models: every output within 1e-6 + 1e-3 x "
            "|primary's value|).",
            ("model", "primary", "shadow", "agree"),
            registry=registry,
        )
        self.probability_diff = Histogram(
            "servewell_shadow_probability_diff",
            "Per row a classifier's primary and shadow both answered, the largest "
            "difference between their probabilities.",
            ("model", "primary", "shadow"),
            buckets=PROBABILITY_DIFF_BUCKETS,
            registry=registry,
        )
        self.duration_s = Histogram(
            "servewell_shadow_duration_seconds",
            "Time a shadow version took on a copy of a request (its own queue, batching "
            "and compute; failures included).",
            ("model", "shadow"),
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.errors = Counter(
            "servewell_shadow_errors",
            "Copies of requests a shadow version failed on (the callers got the primary's "
            "answers), or answered with outputs that cannot be compared with the primary's.",
            ("model", "shadow"),
            registry=registry,
        )
