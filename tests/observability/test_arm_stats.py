"""Per-arm figures read back from a server's metrics text, as ``traffic show`` prints them."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, generate_latest

from servewell.observability import ServingMetrics
from servewell.observability.arm_stats import arm_stats, quantile


def test_quantiles_interpolate_inside_the_bucket() -> None:
    cumulative = {0.1: 50.0, 0.2: 100.0, math.inf: 100.0}
    assert quantile(0.5, cumulative) == 0.1
    assert quantile(0.75, cumulative) == 0.15000000000000002
    assert quantile(0.5, {0.1: 0.0, math.inf: 0.0}) is None
    assert quantile(0.99, {0.1: 1.0, math.inf: 100.0}) == 0.1  # past the last bound


def test_what_the_server_counted_per_arm() -> None:
    registry = CollectorRegistry()
    metrics = ServingMetrics(registry, direct=False)
    for _ in range(9):
        metrics.observe_arm("fraud", "2", "2", 200, 0.004)
    metrics.observe_arm("fraud", "canary", "3", 503, 0.2)
    metrics.observe_arm("fraud", "canary", "3", 200, 0.02)
    metrics.observe_arm("fraud", "canary", "3", 404, 0.001)
    metrics.observe_arm("other", "2", "2", 200, 0.004)
    metrics.tally.flush()
    stats = arm_stats(generate_latest(registry).decode(), "fraud")
    assert set(stats) == {"2", "canary"}
    assert (stats["2"].requests, stats["2"].errors, stats["2"].versions) == (9, 0, ("2",))
    assert stats["canary"].requests == 3
    assert stats["canary"].error_rate == 1 / 3
    p50, p99 = stats["2"].p50_s, stats["2"].p99_s
    assert p50 is not None
    assert p99 is not None
    assert 0.0025 < p50 <= p99 <= 0.005  # inside the bucket the latencies fell in
