"""Two replicas' alert services on one registry (SQLite and PostgreSQL): one holds the
``alerts`` lease and evaluates, the other stands by and shows the stored state; when
the holder stops, the other takes over the episode where it was."""

from __future__ import annotations

import asyncio
import json
import time

from prometheus_client import CollectorRegistry

from monitored_models import write_logged
from servewell.bootstrap import Services
from servewell.monitoring.alerts import LEASE, AlertService
from servewell.observability import ServingMetrics
from servewell.observability.alert_metrics import AlertMetrics
from servewell.registry.leases import Leases
from servewell.registry.predictions import PredictionRow, SqlPredictionStore
from servewell.settings.monitoring import MonitoringSettings
from serving_models import register_python

RULE = {
    "name": "acc-drop", "model": "clicks", "metric": "accuracy", "op": "<",
    "threshold": 0.9, "window": "1h", "for": "0s",
}  # fmt: skip


def replica(services: Services) -> tuple[AlertService, CollectorRegistry]:
    registry = CollectorRegistry()
    settings = MonitoringSettings(alerts=[RULE])
    return AlertService(services, settings, AlertMetrics(ServingMetrics(registry))), registry


def firing(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value("servewell_alert_firing", {"rule": "acc-drop"})


def test_one_replica_evaluates_and_every_one_shows_the_state(services: Services) -> None:
    register_python(services, "clicks", "labels", signature="label.json")
    now = time.time()
    rows = [
        PredictionRow(now - 10 + i, f"r{i}", "clicks", 1, None, None, 1.0, False,
                      json.dumps({"label": [0]}), json.dumps({"x": [1.0]}))
        for i in range(5)
    ]  # fmt: skip
    write_logged(services, rows)  # rows and window sketches, as a server writes them
    store = SqlPredictionStore(services.registry)
    store.label("clicks", [(f"r{i}", 1) for i in range(5)])
    (first, first_metrics), (second, second_metrics) = replica(services), replica(services)
    assert [e.event.kind for e in first.tick()] == ["pending", "firing"]
    assert second.tick() == []  # standing by
    assert (first.holding, second.holding) == (True, False)
    assert Leases(services.registry).holder(LEASE) == first.holder
    assert firing(first_metrics) == firing(second_metrics) == 1.0
    asyncio.run(first.stop())  # gives the lease up
    assert second.tick() == []  # took over, still firing: nothing new to say
    assert second.holding
    assert second.evaluator.firing() == ["acc-drop"]
