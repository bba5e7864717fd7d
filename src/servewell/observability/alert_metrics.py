"""The alert rules' metrics: every replica sets the gauges from the states stored in
the registry (so each one's ``/metrics`` agrees, whichever evaluates), and the
evaluating process counts its webhook deliveries.

``servewell_monitor_value`` is what a rule last evaluated to (absent while it has no
value), so the rules ``servewell alerts export-prometheus`` writes can watch figures
only servewell computes (accuracy, drift, label coverage).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from servewell.observability.metrics import ServingMetrics, forget_series


class AlertMetrics:
    def __init__(self, serving: ServingMetrics) -> None:
        registry = serving.registry
        self.firing = Gauge(
            "servewell_alert_firing",
            "1 while an alert rule is firing, else 0 (from the registry's stored states).",
            ("rule",),
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.value = Gauge(
            "servewell_monitor_value",
            "An alert rule's metric as its last evaluation found it (on its window, for "
            "its model's production version).",
            ("rule", "model", "metric"),
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.deliveries = Counter(
            "servewell_alert_deliveries",
            "Alert events sent to webhooks, by outcome: delivered, failed (every attempt "
            "failed: given up), dropped (the queue was full).",
            ("outcome",),
            registry=registry,
        )

    def show(self, rule: str, model: str, metric: str, firing: bool, value: float | None) -> None:
        """One rule's state and value as stored."""
        self.firing.labels(rule).set(1 if firing else 0)
        if value is None:
            # NaN, not 0, where the series cannot go: no rule on it may fire on a gap.
            forget_series(self.value, rule, model, metric, unknown=float("nan"))
        else:
            self.value.labels(rule, model, metric).set(value)

    def count_delivery(self, outcome: str) -> None:
        self.deliveries.labels(outcome).inc()
