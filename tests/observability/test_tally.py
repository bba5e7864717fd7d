"""The tally moves counts and latencies into Prometheus in bulk: after a flush the
exposition is exactly what direct ``inc``/``observe`` calls would have given."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest

from servewell.observability import ServingMetrics
from servewell.observability.metrics import LATENCY_BUCKETS_S, Tally


def _page(metrics: ServingMetrics) -> list[str]:
    return sorted(
        line
        for line in generate_latest(metrics.registry).decode().splitlines()
        if not line.startswith("#") and "_created" not in line
    )


def test_a_flushed_tally_equals_direct_calls() -> None:
    tallied = ServingMetrics(CollectorRegistry())
    direct = ServingMetrics(CollectorRegistry())
    direct.tally = Tally(direct=True)
    rng = random.Random(7)
    # Every bucket bound exactly (le is inclusive), values between them, and past the last.
    values = [*LATENCY_BUCKETS_S, *(rng.uniform(0, 12) for _ in range(500)), 0.0]
    for index, value in enumerate(values):
        for metrics in (tallied, direct):
            metrics.observe_request("m", "1", "rest", 200 if index % 3 else 429, value)
            metrics.count_cache("m", "hit" if index % 2 else "miss")
            metrics.count_rate_limit("ci", "allowed")
    assert _page(tallied) != _page(direct)  # nothing moved yet
    tallied.tally.flush()
    assert _page(tallied) == _page(direct)
    tallied.tally.flush()  # flushing again adds nothing
    assert _page(tallied) == _page(direct)


def test_render_flushes_first() -> None:
    metrics = ServingMetrics(CollectorRegistry())
    metrics.count_cache("m", "hit")
    body, _ = metrics.render()
    assert 'servewell_cache_requests_total{model="m",outcome="hit"} 1.0' in body.decode()
