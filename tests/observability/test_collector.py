"""The request path's tallies reach Prometheus through public collectors: the exposition
is what prometheus_client's own metric objects give, a scrape on another thread reads
whole snapshots, and labels stay bounded."""

from __future__ import annotations

import random
import re
import threading
import time

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from servewell.observability import ServingMetrics
from servewell.observability.metrics import LATENCY_BUCKETS_S

CREATED = re.compile(r"^(\w+_created(\{[^}]*\})?) (\S+)$", re.MULTILINE)


def _feed(metrics: ServingMetrics, seed: int = 3) -> None:
    rng = random.Random(seed)
    values = [*LATENCY_BUCKETS_S, *(rng.uniform(0, 12) for _ in range(300)), 0.0]
    for index, value in enumerate(values):
        model = f"m{index % 3}"
        metrics.observe_request(model, "1", ("rest", "v2")[index % 2], (200, 404)[index % 2], value)
        metrics.count_cache(model, ("hit", "miss", "bypass")[index % 3])
        metrics.count_rate_limit(
            ("ci", "ip:10.0.0.1")[index % 2], ("allowed", "limited")[index % 2]
        )


def test_the_exposition_is_what_prometheus_client_objects_give() -> None:
    """Every line (HELP, TYPE, order, labels, buckets, values) equals the exposition of
    prometheus_client's own Counter and Histogram fed the same calls; ``_created`` is
    the time each series first appeared."""
    started = time.time()
    tallied = ServingMetrics(CollectorRegistry())
    direct = ServingMetrics(CollectorRegistry(), direct=True)
    for metrics in (tallied, direct):
        _feed(metrics)
    text, expected = tallied.render()[0].decode(), direct.render()[0].decode()
    assert CREATED.sub(r"\1 T", text) == CREATED.sub(r"\1 T", expected)
    created = [float(match[2]) for match in CREATED.findall(text)]
    assert created
    assert all(started <= value <= time.time() for value in created)
    assert 'servewell_request_duration_seconds_bucket{le="+Inf",model="m0"' in text


def test_the_registry_refuses_a_second_family_of_the_same_name() -> None:
    registry = CollectorRegistry()
    ServingMetrics(registry)
    with pytest.raises(ValueError, match="servewell_requests"):
        ServingMetrics(registry)


def test_created_series_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_DISABLE_CREATED_SERIES", "true")
    metrics = ServingMetrics(CollectorRegistry())
    _feed(metrics)
    text = metrics.render()[0].decode()
    assert 'servewell_requests_total{model="m0"' in text
    for family in ("requests", "request_duration_seconds", "cache_requests"):
        assert f"servewell_{family}_created{{" not in text


def test_a_scrape_on_another_thread_reads_whole_snapshots() -> None:
    """The event loop's thread writes and flushes; a scrape elsewhere sees each family
    as one flush left it: never half a flush, never a histogram's count without its sum
    or buckets. (Two families of one scrape may come from consecutive flushes.)"""
    metrics = ServingMetrics(CollectorRegistry())
    done = threading.Event()
    scrapes: list[str] = []

    def scrape() -> None:
        while not done.is_set():
            scrapes.append(generate_latest(metrics.registry).decode())

    scraper = threading.Thread(target=scrape)
    scraper.start()
    try:
        for batch in range(200):
            for _ in range(50):
                metrics.observe_request("m", "1", "rest", 200, 0.5)
            metrics.tally.flush()
            if batch % 20 == 0:
                time.sleep(0.001)  # let the scraper in
    finally:
        done.set()
        scraper.join(timeout=30)
    scrapes.append(generate_latest(metrics.registry).decode())
    for text in scrapes:
        samples = {
            sample.name: sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.labels.get("le") in (None, "0.5", "+Inf")
            and sample.labels.get("model") == "m"
        }
        assert samples.get("servewell_requests_total", 0.0) % 50 == 0  # whole flushes
        observed = samples.get("servewell_request_duration_seconds_count", 0.0)
        assert observed % 50 == 0
        if observed:
            assert samples["servewell_request_duration_seconds_sum"] == 0.5 * observed
            assert samples["servewell_request_duration_seconds_bucket"] == observed
    assert samples["servewell_requests_total"] == 200 * 50
    assert samples["servewell_request_duration_seconds_count"] == 200 * 50
    assert len(scrapes) > 2


def test_many_client_addresses_are_one_anonymous_series() -> None:
    metrics = ServingMetrics(CollectorRegistry())
    for index in range(10_000):
        metrics.count_rate_limit(
            f"ip:10.{index // 65536}.{index // 256 % 256}.{index % 256}", "allowed"
        )
    metrics.count_rate_limit("ip:::1", "limited")
    metrics.count_rate_limit("ci-bot", "allowed")
    metrics.count_rate_limit("ops", "limited")
    families = {
        family.name: family
        for family in text_string_to_metric_families(metrics.render()[0].decode())
    }
    totals = {
        (sample.labels["caller"], sample.labels["outcome"]): sample.value
        for sample in families["servewell_rate_limit_decisions"].samples
        if sample.name.endswith("_total")
    }
    assert totals == {
        ("anonymous", "allowed"): 10_000,
        ("anonymous", "limited"): 1,
        ("ci-bot", "allowed"): 1,
        ("ops", "limited"): 1,
    }
