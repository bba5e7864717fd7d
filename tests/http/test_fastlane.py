"""Cache hits answered inside the HTTP protocol (``http.fastlane``, ``http.protocol``),
through real uvicorn servers on loopback ports: the same answers, headers, counts and
refusals as the ASGI path, and the ASGI path for everything the lane declines."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from servewell.bootstrap import build_services
from servewell.http import create_app
from servewell.http.app import ServewellApp
from servewell.registry.keys import ApiKeyStore
from servewell.settings import RateLimitSettings, ServerSettings, Settings
from serving_models import register_adder, serve_in_thread

URL = "/v1/models/adder:predict"
BODY = b'{"inputs": {"x": [[1.0]], "y": [[2.0]]}}'


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fastlane")
    services = build_services(Settings(home=folder / "home"))
    try:
        register_adder(services, folder)
    finally:
        services.close()
    return folder / "home"


@pytest.fixture(scope="module")
def keys(home: Path) -> dict[str, str]:
    services = build_services(Settings(home=home))
    store = ApiKeyStore(services.registry)
    try:
        return {
            "app": store.create("app", rate="1000/minute")[1],
            "tight": store.create("tight", rate="3/minute")[1],
            "other": store.create("other", models=("iris",))[1],
        }
    finally:
        services.close()


@pytest.fixture
def server(home: Path, keys: dict[str, str]) -> Iterator[tuple[ServewellApp, str]]:
    app = create_app(
        Settings(
            home=home,
            server=ServerSettings(models=["adder"]),
            rate_limits=RateLimitSettings(anonymous_rate=None),
        )
    )
    with serve_in_thread(app) as running:
        yield app, running.url


def _post(url: str, key: str, body: bytes = BODY, **headers: str) -> httpx.Response:
    return httpx.post(
        url + URL,
        content=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json", **headers},
    )


def test_a_hit_is_answered_by_the_lane_like_the_app_would(
    server: tuple[ServewellApp, str], keys: dict[str, str]
) -> None:
    app, url = server
    assert app.lane is not None
    miss = _post(url, keys["app"], **{"X-Request-Id": "first"})
    assert app.lane.answered == 0
    hit = _post(url, keys["app"], **{"X-Request-Id": "second"})
    assert app.lane.answered == 1
    assert (miss.status_code, hit.status_code) == (200, 200)
    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("miss", "hit")
    assert hit.content == miss.content
    assert hit.json()["predictions"] == [3.0]
    assert hit.headers["x-request-id"] == "second"
    assert hit.headers["content-type"] == miss.headers["content-type"]
    assert int(hit.headers["ratelimit-remaining"]) == int(miss.headers["ratelimit-remaining"]) - 1
    assert hit.headers["ratelimit-limit"] == "1000"
    for name in ("date", "server"):
        assert name in hit.headers
    metrics = httpx.get(url + "/metrics").text
    assert 'servewell_cache_requests_total{model="adder",outcome="hit"} 1.0' in metrics
    assert 'servewell_cache_requests_total{model="adder",outcome="miss"} 1.0' in metrics
    assert (
        'servewell_requests_total{model="adder",protocol="rest",status="200",version="1"} 2.0'
        in metrics
    )
    assert 'servewell_rate_limit_decisions_total{caller="app",outcome="allowed"} 2.0' in metrics


def test_refusals_on_the_lane_touch_each_bucket_once(
    server: tuple[ServewellApp, str], keys: dict[str, str]
) -> None:
    app, url = server
    assert app.lane is not None
    assert _post(url, keys["app"]).headers["x-cache"] == "miss"  # now cached
    answers = [_post(url, keys["tight"]) for _ in range(5)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429, 429]
    assert answers[3].headers["retry-after"]
    assert answers[3].headers["ratelimit-remaining"] == "0"
    assert "key 'tight'" in answers[3].json()["error"]
    assert _post(url, "sw_nope_nope").status_code == 401
    assert _post(url, keys["other"]).status_code == 403
    assert app.lane.answered == 7
    metrics = httpx.get(url + "/metrics").text
    assert 'servewell_rate_limit_decisions_total{caller="tight",outcome="limited"} 2.0' in metrics


def test_what_the_lane_declines_takes_the_asgi_path(
    server: tuple[ServewellApp, str], keys: dict[str, str]
) -> None:
    app, url = server
    assert app.lane is not None
    _post(url, keys["app"])
    bypass = _post(url, keys["app"], **{"Cache-Control": "no-cache"})
    assert bypass.headers["x-cache"] == "miss"
    proxied = _post(url, keys["app"], **{"X-Forwarded-For": "10.0.0.9"})
    assert proxied.headers["x-cache"] == "hit"  # answered, by the app
    other_spelling = _post(url, keys["app"], body=BODY.replace(b": ", b":"))
    assert other_spelling.headers["x-cache"] == "miss"
    bad_type = _post(url, keys["app"], **{"Content-Type": "text/plain"})
    assert bad_type.status_code == 415  # a cached body does not skip the content check
    assert app.lane.answered == 0


def test_pipelined_requests_are_answered_in_order(
    server: tuple[ServewellApp, str], keys: dict[str, str]
) -> None:
    """Two hits (the lane: nothing is in flight), a miss (the app), a hit queued behind
    it (so the app answers it too), sent in one write on one connection: four answers,
    in order."""
    app, url = server
    assert app.lane is not None
    _post(url, keys["app"])  # cached
    other = b'{"inputs": {"x": [[5.0]], "y": [[2.0]]}}'
    host, port = url.removeprefix("http://").split(":")
    requests = b"".join(
        b"POST " + URL.encode() + b" HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + keys["app"].encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        for body in (BODY, BODY, other, BODY)
    )
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(requests)
        received = b""
        while received.count(b"HTTP/1.1 200") < 4 or not received.endswith(b"}"):
            chunk = connection.recv(65536)
            assert chunk, f"connection closed after {received!r}"
            received += chunk
    answers = [part.split(b'"predictions":')[1] for part in received.split(b"HTTP/1.1 200")[1:]]
    assert answers == [b"[3.0]}", b"[3.0]}", b"[7.0]}", b"[3.0]}"]
    caches = [part.split(b"x-cache: ")[1][:4] for part in received.split(b"HTTP/1.1 200")[1:]]
    assert caches == [b"hit\r", b"hit\r", b"miss", b"hit\r"]
    assert app.lane.answered == 2


def test_idle_connections_close_after_the_keep_alive_timeout(home: Path) -> None:
    """One timer per connection measures idleness: a connection that keeps asking stays
    open past the timeout, one left idle is closed after it."""
    app = create_app(Settings(home=home, server=ServerSettings(models=["adder"])))
    request = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
    with serve_in_thread(app, timeout_keep_alive=1) as running:
        host, port = running.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as connection:
            started = time.monotonic()
            while time.monotonic() - started < 2.5:  # busy for 2.5 timeouts
                connection.sendall(request)
                assert b"200 OK" in connection.recv(65536)
                time.sleep(0.3)
            time.sleep(1.6)  # idle past the timeout
            assert connection.recv(65536) == b""  # closed by the server
