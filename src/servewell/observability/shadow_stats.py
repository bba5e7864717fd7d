"""A model's shadow as a running server measured it, read back from its ``/metrics``
text (``servewell traffic show --server``): copies sent, failed and dropped, rows
compared and the share that agree, the shadow's latency and the probabilities' largest
differences, since the server started (summed over its workers and primary versions).
"""

from __future__ import annotations

from dataclasses import dataclass

from servewell.observability.arm_stats import quantile


@dataclass(frozen=True, slots=True)
class ShadowStats:
    copies: int
    """Copies of requests the shadow answered or failed on."""
    errors: int
    dropped: int
    """Copies not sent: the shadow's queue was full."""
    rows_compared: int
    rows_agreeing: int
    p50_s: float | None
    p99_s: float | None
    probability_diff_p99: float | None
    """None: no classifier probabilities were compared."""

    @property
    def agreement(self) -> float | None:
        return self.rows_agreeing / self.rows_compared if self.rows_compared else None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.copies if self.copies else None


def shadow_stats(metrics_text: str, model: str) -> ShadowStats:
    """What ``servewell_shadow_*`` of ``model`` in ``metrics_text`` add up to."""
    from prometheus_client.parser import text_string_to_metric_families

    sums: dict[str, float] = {}
    latency: dict[float, float] = {}
    diffs: dict[float, float] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            labels = sample.labels
            if labels.get("model") != model or not sample.name.startswith("servewell_shadow_"):
                continue
            name = sample.name
            if name == "servewell_shadow_comparisons_total":
                name += "_agree" if labels.get("agree") == "true" else "_disagree"
            elif name.endswith("_bucket"):
                buckets = latency if name.startswith("servewell_shadow_duration") else diffs
                bound = float(labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
                continue
            sums[name] = sums.get(name, 0.0) + sample.value
    agreeing = int(sums.get("servewell_shadow_comparisons_total_agree", 0))
    return ShadowStats(
        copies=int(sums.get("servewell_shadow_duration_seconds_count", 0)),
        errors=int(sums.get("servewell_shadow_errors_total", 0)),
        dropped=int(sums.get("servewell_shadow_dropped_total", 0)),
        rows_compared=agreeing + int(sums.get("servewell_shadow_comparisons_total_disagree", 0)),
        rows_agreeing=agreeing,
        p50_s=quantile(0.5, latency),
        p99_s=quantile(0.99, latency),
        probability_diff_p99=quantile(0.99, diffs),
    )
