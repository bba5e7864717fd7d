"""The live ring's figures, from a real metrics registry fed as the server feeds it."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from servewell.observability import ServingMetrics
from servewell.observability.live import LiveRing, points, read_families


def _run(coroutine: Any) -> Any:
    """``asyncio.run`` on a thread of its own (a browser test's event loop may be running
    on this one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=120)


def _metrics() -> ServingMetrics:
    return ServingMetrics(CollectorRegistry(), direct=False)


def _read(metrics: ServingMetrics, at: float):  # type: ignore[no-untyped-def]
    metrics.tally.flush()
    snapshot = read_families(metrics.scraped().collect())
    return type(snapshot)(at, snapshot.versions, snapshot.cache)


def test_rates_quantiles_errors_batches_cache_and_gauges_come_from_deltas() -> None:
    metrics = _metrics()
    deployment = metrics.for_deployment("iris", 1)
    metrics.observe_request("iris", "1", "rest", 200, 0.004)
    first = _read(metrics, 100.0)
    for _ in range(8):
        metrics.observe_request("iris", "1", "rest", 200, 0.004)
    metrics.observe_request("iris", "1", "v2", 400, 0.002)
    metrics.observe_request("iris", "1", "rest", 503, 0.2)
    deployment.batch_size.observe(4)
    deployment.batch_size.observe(2)
    deployment.queue_depth.set(3)
    deployment.breaker_state.set(2)
    for outcome in ("hit", "hit", "miss", "bypass"):
        metrics.count_cache("iris", outcome)
    second = _read(metrics, 102.0)

    (series,) = points([first, second])
    assert (series.model, series.version) == ("iris", "1")
    (p,) = series.points
    assert p.requests == 10
    assert p.requests_per_s == pytest.approx(10 / 2.0)
    assert p.error_rate == pytest.approx(0.2)
    assert p.errors_by_status == {"400": pytest.approx(0.1), "503": pytest.approx(0.1)}
    assert p.p50_s is not None
    assert 0.0025 <= p.p50_s <= 0.005
    assert p.p99_s is not None
    assert p.p99_s > 0.1
    assert p.batch_rows == pytest.approx(3.0)
    assert p.cache_hit_ratio == pytest.approx(2 / 3)  # a bypass is no lookup
    assert p.queue_depth == 3
    assert p.breaker == "open"


def test_an_idle_interval_has_no_latency_and_no_error_rate() -> None:
    metrics = _metrics()
    metrics.observe_request("iris", "1", "rest", 200, 0.004)
    first, second = _read(metrics, 1.0), _read(metrics, 3.0)
    (p,) = points([first, second])[0].points
    assert p.requests_per_s == 0
    assert p.p50_s is None
    assert p.p99_s is None
    assert p.error_rate is None
    assert p.batch_rows is None
    assert p.cache_hit_ratio is None


def test_requests_without_a_served_version_are_not_a_series() -> None:
    metrics = _metrics()
    metrics.observe_request("", "", "rest", 404, 0.001)
    metrics.observe_request("nosuch", "", "rest", 404, 0.001)
    assert points([_read(metrics, 1.0), _read(metrics, 2.0)]) == []


def test_the_ring_is_bounded_by_its_window() -> None:
    metrics = _metrics()
    ring = LiveRing(metrics, interval_s=1.0, window_s=4.0)

    async def take_many() -> None:
        for _ in range(20):
            metrics.observe_request("iris", "1", "rest", 200, 0.01)
            await ring.take()

    _run(take_many())
    assert len(ring.snapshots) == 5
    (series,) = ring.series()
    assert len(series.points) == 4
    assert ring.series("other") == []
