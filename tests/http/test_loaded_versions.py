"""``servewell_model_loaded{model,version}`` on a real server: 1 for each version loaded
(the default, then a traffic arm loaded while running), gone once a version is unloaded."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from servewell.bootstrap import Services
from servewell.core.traffic import Arm
from servewell.http import create_app
from servewell.registry.traffic import TrafficStore
from servewell.settings import AuthSettings, ServerSettings, Settings
from serving_models import register_python, serve_in_thread

WAIT_S = 60.0


def _loaded(url: str) -> dict[tuple[str, str], float]:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return {
        (sample.labels["model"], sample.labels["version"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "servewell_model_loaded"
    }


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.1)


def test_each_loaded_version_reads_1_and_an_unloaded_one_goes(services: Services) -> None:
    for _ in range(2):
        register_python(services, "fraud", "sum", signature="sum.json")
    services.registry.set_alias("fraud", "production", 1)
    settings = Settings(
        home=services.settings.home,
        database_url=services.settings.database_url,
        auth=AuthSettings(enabled=False),
        server=ServerSettings(models=["fraud"]),
    )
    store = TrafficStore(services.registry)
    with serve_in_thread(create_app(settings, services)) as server:
        assert _loaded(server.url) == {("fraud", "1"): 1.0}
        store.set_split("fraud", [Arm("1", 50), Arm("2", 50)])
        _until(lambda: _loaded(server.url) == {("fraud", "1"): 1, ("fraud", "2"): 1}, "v2 loads")
        store.clear("fraud")  # nothing routes to version 2 any more: it is unloaded
        _until(lambda: _loaded(server.url) == {("fraud", "1"): 1.0}, "v2 is unloaded")
