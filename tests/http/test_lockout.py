"""Failed authentications limited per client address (``auth.failed_attempts_rate``):
the app in process with callers at several addresses, and two servers sharing one
Redis (the fast lane's part is in ``test_fastlane``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from redis_server import PrivateRedis
from servewell.http import create_app
from servewell.http.app import ServewellApp
from servewell.settings import AuthSettings, ServerSettings, Settings
from serving_models import InProcessClient, build_adder_home, create_key, serve_in_process

REST = "/v1/models/adder:predict"
BODY = b'{"inputs": {"x": [[1.0]], "y": [[2.0]]}}'
BAD_KEY = {"Authorization": "Bearer sw_aaaaaaaaaaaa_" + "x" * 43}
#: Three failures, then no token back within any test run.
FAILURES = "3/hour"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_adder_home(tmp_path_factory.mktemp("lockout") / "home")


@pytest.fixture(scope="module")
def key(home: Path) -> str:
    return create_key(home, "lockout-app")


def _settings(home: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "home": home,
        "server": ServerSettings(models=["adder"]),
        "auth": AuthSettings(failed_attempts_rate=FAILURES),
    }
    return Settings(**{**base, **overrides})


class Callers:
    """Requests to an app in process, each from the client address it names."""

    def __init__(self, app: ServewellApp, client: InProcessClient) -> None:
        self.app = app
        self.client = client

    def request(self, address: str, method: str, path: str, **options: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, client=(address, 40_000))
            async with httpx.AsyncClient(transport=transport, base_url="http://sw") as http:
                return await http.request(method, path, **options)

        return self.client.run(call)  # type: ignore[no-any-return]

    def predict(self, address: str, headers: dict[str, str]) -> httpx.Response:
        headers = {"Content-Type": "application/json", **headers}
        return self.request(address, "POST", REST, content=BODY, headers=headers)


@pytest.fixture
def callers(home: Path) -> Iterator[Callers]:
    app = create_app(_settings(home))
    with serve_in_process(app) as client:
        yield Callers(app, client)


def test_an_address_is_locked_out_after_its_failures(callers: Callers, key: str) -> None:
    attacker, neighbour = "203.0.113.7", "198.51.100.2"
    assert [callers.predict(attacker, BAD_KEY).status_code for _ in range(3)] == [401] * 3
    locked = callers.predict(attacker, BAD_KEY)
    assert locked.status_code == 429
    body = locked.json()
    assert body["code"] == "locked_out"
    assert "too many failed authentications from client 203.0.113.7" in body["error"]
    assert int(locked.headers["retry-after"]) > 60  # 3/hour: a token back in 20 minutes
    assert not [name for name in locked.headers if name.startswith("ratelimit-")]

    # Every request that needs a key, whatever it sends, on every route kind:
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"X-API-Key": key}):
        assert callers.predict(attacker, headers).status_code == 429
    metadata = callers.request(attacker, "GET", "/v2/models/adder", headers={"X-API-Key": key})
    assert metadata.status_code == 429
    assert set(metadata.json()) == {"error"}  # V2 keeps the protocol's error body
    # Open paths need no key: they stay open.
    assert callers.request(attacker, "GET", "/v2/health/ready").status_code == 200

    # Another address has a budget of its own, and a valid key works from it.
    assert callers.predict(neighbour, {"X-API-Key": key}).status_code == 200
    assert callers.predict(neighbour, BAD_KEY).status_code == 401

    metrics = callers.request(neighbour, "GET", "/metrics").text
    assert 'servewell_errors_total{code="locked_out"} 5.0' in metrics
    assert 'servewell_errors_total{code="unauthorized"} 4.0' in metrics
    assert 'caller="anonymous",outcome="limited"} 5.0' in metrics
    assert "203.0.113" not in metrics


def test_successes_are_never_counted(callers: Callers, key: str) -> None:
    address = "192.0.2.10"
    for _ in range(10):
        assert callers.predict(address, {"X-API-Key": key}).status_code == 200
    assert [callers.predict(address, BAD_KEY).status_code for _ in range(4)] == [401] * 3 + [429]


def test_every_kind_of_401_is_a_failure(callers: Callers) -> None:
    address = "192.0.2.30"
    kinds = [{}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"X-API-Key": "sw_nope"}]
    assert [callers.predict(address, headers).status_code for headers in kinds] == [401] * 3
    assert callers.predict(address, {}).status_code == 429


def test_null_turns_the_lockout_off(home: Path) -> None:
    app = create_app(_settings(home, auth=AuthSettings(failed_attempts_rate=None)))
    with serve_in_process(app) as client:
        callers = Callers(app, client)
        assert {callers.predict("192.0.2.20", BAD_KEY).status_code for _ in range(10)} == {401}


def test_servers_sharing_redis_share_the_budget(
    home: Path, key: str, private_redis: PrivateRedis
) -> None:
    settings = _settings(home, redis_url=private_redis.url)
    first_app, second_app = create_app(settings), create_app(settings)
    with serve_in_process(first_app) as first, serve_in_process(second_app) as second:
        replicas = [Callers(first_app, first), Callers(second_app, second)]
        address = "203.0.113.50"
        statuses = [replicas[index % 2].predict(address, BAD_KEY).status_code for index in range(3)]
        assert statuses == [401] * 3
        for replica in replicas:  # each learns of the lockout at its next failure
            assert replica.predict(address, BAD_KEY).status_code == 429
            assert replica.predict(address, {"X-API-Key": key}).status_code == 429
