"""The metrics of generative (chat) models: the time to a streamed answer's first
token. Observed once per stream, off the per-request tally, straight to
prometheus_client (as ``shadow_metrics``)."""

from __future__ import annotations

from prometheus_client import Histogram

from servewell.observability.metrics import LATENCY_BUCKETS_S, ServingMetrics


class LlmMetrics:
    def __init__(self, serving: ServingMetrics) -> None:
        self.first_token_s = Histogram(
            "servewell_llm_first_token_seconds",
            "Time from a streamed chat completion's start to its first piece of text "
            "(the model's or upstream's answer, before it is sent).",
            ("model", "version"),
            buckets=LATENCY_BUCKETS_S,
            registry=serving.registry,
        )

    def first_token(self, model: str, version: int, elapsed_s: float) -> None:
        self.first_token_s.labels(model, str(version)).observe(elapsed_s)
