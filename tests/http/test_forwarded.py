"""Forwarded client addresses (``server.forwarded_allow_ips``): ignored unless the peer is
a trusted proxy, believed from one; either way the metrics stay bounded."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from servewell.http import create_app
from servewell.settings import AuthSettings, ServerSettings, Settings
from serving_models import build_adder_home, serve_in_thread, serve_process

REST = "/v1/models/adder:predict"
BAD_KEY = {"Authorization": "Bearer sw_aaaaaaaaaaaa_" + "x" * 43}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_adder_home(tmp_path_factory.mktemp("forwarded") / "home")


def _failures(url: str, forwarded_for: list[str]) -> list[httpx.Response]:
    """A failed authentication from each forwarded address, from 127.0.0.1."""
    with httpx.Client(base_url=url) as http:
        return [
            http.post(REST, json={}, headers={**BAD_KEY, "X-Forwarded-For": address})
            for address in forwarded_for
        ]


def test_a_forged_forwarded_address_is_ignored_by_default(home: Path) -> None:
    """uvicorn alone would believe X-Forwarded-For from 127.0.0.1: anyone on the host
    could pick a fresh address for every failed key, and never be locked out."""
    env = {"SERVEWELL_AUTH__FAILED_ATTEMPTS_RATE": "2/hour"}
    with serve_process(home, "--models", "adder", env=env) as (url, _):
        answers = _failures(url, ["203.0.113.1", "203.0.113.2", "203.0.113.3"])
    assert [answer.status_code for answer in answers] == [401, 401, 429]
    assert "from client 127.0.0.1:" in answers[-1].json()["error"]


def test_a_trusted_proxy_names_the_client(home: Path) -> None:
    env = {
        "SERVEWELL_AUTH__FAILED_ATTEMPTS_RATE": "2/hour",
        "SERVEWELL_SERVER__FORWARDED_ALLOW_IPS": "127.0.0.1",
    }
    with serve_process(home, "--models", "adder", env=env) as (url, _):
        spread = _failures(url, ["203.0.113.1", "203.0.113.2", "203.0.113.3"])
        repeated = _failures(url, ["198.51.100.9"] * 3)
    assert [answer.status_code for answer in spread] == [401, 401, 401]
    assert [answer.status_code for answer in repeated] == [401, 401, 429]
    assert "from client 198.51.100.9:" in repeated[-1].json()["error"]


class Clients:
    """An access log that keeps the client address of each line."""

    def __init__(self) -> None:
        self.addresses: list[str | None] = []

    def write(self, record: object, latency_s: float, client: str | None) -> None:
        self.addresses.append(client)

    def close(self) -> None:
        pass


def _series(url: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    text = httpx.get(url + "/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.parametrize("trusted", [[], ["127.0.0.1"]])
def test_a_thousand_forwarded_addresses_make_no_new_series(home: Path, trusted: list[str]) -> None:
    """Each address is limited on its own (open paths, failed keys) and logged as itself
    when a proxy is trusted, but the metrics know callers only as key names and
    ``anonymous``: the series after 1,000 addresses are those after a few (the few
    take every path: allowed, refused, locked out, and /metrics itself)."""
    clients = Clients()
    settings = Settings(
        home=home,
        server=ServerSettings(models=["adder"], forwarded_allow_ips=trusted),
        auth=AuthSettings(failed_attempts_rate="2/hour"),
    )
    app = create_app(settings, access_log=clients)
    addresses = [f"10.{index // 250}.{index % 250}.1" for index in range(1000)]
    with serve_in_thread(app) as server, httpx.Client(base_url=server.url) as http:

        def call_from(address: str) -> tuple[int, int]:
            forwarded = {"X-Forwarded-For": address}
            probe = http.get("/v2/health/ready", headers=forwarded)
            failure = http.post(REST, json={}, headers={**BAD_KEY, **forwarded})
            return probe.status_code, failure.status_code

        statuses = {call_from(address) for address in addresses[:5]}
        _series(server.url)
        after_few = _series(server.url)
        statuses |= {call_from(address) for address in addresses[5:]}
        after_all = _series(server.url)
    if trusted:
        assert statuses == {(200, 401)}  # each address has a budget of its own
        assert set(clients.addresses) >= set(addresses)
    else:
        assert statuses == {(200, 401), (200, 429)}  # one address: 127.0.0.1
        assert set(clients.addresses) == {"127.0.0.1"}
    assert after_all == after_few
