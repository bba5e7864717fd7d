from __future__ import annotations

from prometheus_client import CollectorRegistry

from servewell.observability import ServingMetrics


def test_two_apps_in_one_process_keep_separate_metrics() -> None:
    first, second = ServingMetrics(CollectorRegistry()), ServingMetrics(CollectorRegistry())
    first.observe_request("m", "1", "rest", 200, 0.01)
    assert (
        b'servewell_requests_total{model="m",protocol="rest",status="200",version="1"} 1.0'
        in (first.render()[0])
    )
    assert b"servewell_requests_total{" not in second.render()[0]


def test_deployment_metrics_are_labelled_once() -> None:
    metrics = ServingMetrics(CollectorRegistry())
    deployment = metrics.for_deployment("m", 3)
    deployment.batch_size.observe(8)
    text = metrics.render()[0].decode()
    assert 'servewell_batch_size_rows_sum{model="m",version="3"} 8.0' in text
