"""A canary rollout's metrics (``serving/rollout.py``), set off the request path by the
rollout driver's task, straight on prometheus_client's objects."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from servewell.observability.metrics import ServingMetrics


class RolloutMetrics:
    def __init__(self, serving: ServingMetrics) -> None:
        self.step_percent = Gauge(
            "servewell_rollout_step_percent",
            "The share of a model's requests its rollout's candidate has now (100 once "
            "completed, 0 once aborted), as every server reads it from the registry.",
            ("model",),
            multiprocess_mode="max",
            registry=serving.registry,
        )
        self.aborts = Counter(
            "servewell_rollout_aborts",
            "Rollouts aborted by themselves, by the bound the candidate broke (error_rate, "
            "p99); counted once, by the server that judged it.",
            ("model", "reason"),
            registry=serving.registry,
        )
