"""Cache hits answered inside the HTTP protocol (``http.protocol`` offering requests to
``Gateway.try_now``), through real uvicorn servers on loopback ports: the same answers,
headers, counts and refusals as the ASGI path, and the ASGI path for everything the lane
declines or fails on."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from servewell.http import create_app
from servewell.http.app import ServewellApp
from servewell.observability import RequestRecord
from servewell.settings import (
    AuthSettings,
    CacheSettings,
    RateLimitSettings,
    ServerSettings,
    Settings,
)
from serving_models import build_adder_home, create_key, serve_in_thread

URL = "/v1/models/adder:predict"
BODY = b'{"inputs": {"x": [[1.0]], "y": [[2.0]]}}'


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_adder_home(tmp_path_factory.mktemp("fastlane") / "home")


@pytest.fixture(scope="module")
def keys(home: Path) -> dict[str, str]:
    return {
        "app": create_key(home, "app", rate="1000/day"),  # refills too slowly to blur counts
        "tight": create_key(home, "tight", rate="3/minute"),
        "other": create_key(home, "other", models=("iris",)),
    }


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


def _answered(app: ServewellApp) -> int:
    """Requests the gateway answered without awaiting (on the fast lane)."""
    return app.running.gateway.answered_now


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
    miss = _post(url, keys["app"], **{"X-Request-Id": "first"})
    assert _answered(app) == 0
    hit = _post(url, keys["app"], **{"X-Request-Id": "second"})
    assert _answered(app) == 1
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
    assert _post(url, keys["app"]).headers["x-cache"] == "miss"  # now cached
    answers = [_post(url, keys["tight"]) for _ in range(5)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429, 429]
    assert answers[3].headers["retry-after"]
    assert answers[3].headers["ratelimit-remaining"] == "0"
    assert "key 'tight'" in answers[3].json()["error"]
    assert _post(url, "sw_nope_nope").status_code == 401
    assert _post(url, keys["other"]).status_code == 403
    assert _answered(app) == 7
    metrics = httpx.get(url + "/metrics").text
    assert 'servewell_rate_limit_decisions_total{caller="tight",outcome="limited"} 2.0' in metrics


def test_the_lane_locks_out_an_address_that_fails_too_often(
    home: Path, keys: dict[str, str]
) -> None:
    """The lane counts failed keys and refuses a locked-out address, valid key or not,
    as the app path does (``test_lockout``)."""
    app = create_app(
        Settings(
            home=home,
            server=ServerSettings(models=["adder"]),
            rate_limits=RateLimitSettings(anonymous_rate=None),
            auth=AuthSettings(failed_attempts_rate="3/hour"),
        )
    )
    with serve_in_thread(app) as running:
        assert _post(running.url, keys["app"]).headers["x-cache"] == "miss"  # now cached
        answers = [_post(running.url, "sw_nope_nope") for _ in range(4)]
        with_key = _post(running.url, keys["app"])
        assert _answered(app) == 5  # every one on the lane
    assert [answer.status_code for answer in answers] == [401, 401, 401, 429]
    assert answers[-1].json()["code"] == "locked_out"
    assert "from client 127.0.0.1:" in answers[-1].json()["error"]
    assert with_key.status_code == 429


def test_what_the_lane_declines_takes_the_asgi_path(
    server: tuple[ServewellApp, str], keys: dict[str, str]
) -> None:
    app, url = server
    _post(url, keys["app"])
    bypass = _post(url, keys["app"], **{"Cache-Control": "no-cache"})
    assert bypass.headers["x-cache"] == "miss"
    proxied = _post(url, keys["app"], **{"X-Forwarded-For": "10.0.0.9"})
    assert proxied.headers["x-cache"] == "hit"  # answered, by the app
    other_spelling = _post(url, keys["app"], body=BODY.replace(b": ", b":"))
    assert other_spelling.headers["x-cache"] == "miss"
    bad_type = _post(url, keys["app"], **{"Content-Type": "text/plain"})
    assert bad_type.status_code == 415  # a cached body does not skip the content check
    assert _answered(app) == 0


def test_pipelined_requests_are_answered_in_order(
    server: tuple[ServewellApp, str], keys: dict[str, str]
) -> None:
    """Two hits (the lane: nothing is in flight), a miss (the app), a hit queued behind
    it (so the app answers it too), sent in one write on one connection: four answers,
    in order."""
    app, url = server
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
    assert _answered(app) == 2


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


def _raw(key: str, body: bytes = BODY, path: str = URL, extra: bytes = b"") -> bytes:
    return (
        b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + key.encode() + b"\r\n" + extra + b"Content-Type: "
        b"application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )


def _responses(connection: socket.socket, count: int) -> list[bytes]:
    """``count`` whole responses (all have a content-length); fewer if the server closes."""
    data, answers = b"", []
    while len(answers) < count:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            length = int(data[:end].lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            if len(data) >= end + 4 + length:
                answers.append(data[: end + 4 + length])
                data = data[end + 4 + length :]
                continue
        chunk = connection.recv(65536)
        if not chunk:
            break
        data += chunk
    return answers


def test_a_request_arriving_with_a_hit_keeps_the_connection_busy(
    home: Path, keys: dict[str, str]
) -> None:
    """A hit and the start of the next request in one packet: the connection is busy
    with that request, and the keep-alive timer must not close it under it."""
    app = create_app(Settings(home=home, server=ServerSettings(models=["adder"])))
    with serve_in_thread(app, timeout_keep_alive=1) as running:
        host, port = running.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            connection.sendall(_raw(keys["app"]))
            assert b"x-cache: miss" in _responses(connection, 1)[0]
            following = _raw(keys["app"], b'{"inputs": {"x": [[4.0]], "y": [[2.0]]}}')
            connection.sendall(_raw(keys["app"]) + following[:-10])
            assert b"x-cache: hit" in _responses(connection, 1)[0]
            time.sleep(2.2)  # over two keep-alive timeouts, mid-request
            connection.sendall(following[-10:])
            answer = _responses(connection, 1)
            assert answer
            assert answer[0].endswith(b'"predictions":[6.0]}')


def test_a_client_that_does_not_read_is_paced(home: Path, keys: dict[str, str]) -> None:
    """Pipelined hits from a client that never reads its answers: once the server's
    write buffer is full, requests go the ASGI way, which waits for the client, instead
    of piling answers up in memory."""
    app = create_app(
        Settings(
            home=home,
            server=ServerSettings(models=["adder"]),
            rate_limits=RateLimitSettings(enabled=False),
        )
    )
    rows = ",".join(["[0.123456]"] * 400)  # an answer larger than its request
    body = f'{{"inputs": {{"x": [{rows}], "y": [{rows}]}}}}'.encode()
    with serve_in_thread(app) as running:
        host, port = running.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            connection.sendall(_raw(keys["app"], body))
            assert _responses(connection, 1)
            connection.settimeout(0.5)
            batch, deadline = _raw(keys["app"], body) * 50, time.monotonic() + 3
            while time.monotonic() < deadline:
                try:
                    connection.send(batch)
                except TimeoutError:
                    break  # the server stopped reading: paced
            time.sleep(0.3)
            buffered = sum(
                protocol.transport.get_write_buffer_size()
                for protocol in running.server_state.connections
            )
    assert buffered < 10_000_000


def test_a_refusal_on_the_lane_is_recorded_like_one_on_the_app(
    server: tuple[ServewellApp, str], keys: dict[str, str]
) -> None:
    """The guard refuses before a model is resolved: no model or version in the metrics,
    whichever path answered."""
    app, url = server
    _post(url, keys["app"])  # cached
    assert _post(url, "sw_nope_nope").status_code == 401  # on the lane
    assert _post(url, "sw_nope_nope", body=b'{"inputs": {}}').status_code == 401  # on the app
    assert _answered(app) == 1
    metrics = httpx.get(url + "/metrics").text
    assert 'servewell_requests_total{model="",protocol="rest",status="401",version=""} 2.0' in (
        metrics
    )


def test_an_empty_binary_header_is_not_a_missing_one(
    server: tuple[ServewellApp, str], keys: dict[str, str]
) -> None:
    """Without Inference-Header-Content-Length a V2 body is JSON; with an empty one it is
    a 400, before and after the JSON answer was cached."""
    _, url = server
    body = (
        b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [1.0]},'
        b' {"name": "y", "datatype": "FP32", "shape": [1, 1], "data": [2.0]}]}'
    )
    headers = {"Authorization": f"Bearer {keys['app']}", "Content-Type": "application/json"}
    v2 = url + "/v2/models/adder/infer"
    assert httpx.post(v2, content=body, headers=headers).status_code == 200
    assert httpx.post(v2, content=body, headers=headers).headers["x-cache"] == "hit"
    empty = {**headers, "Inference-Header-Content-Length": ""}
    assert httpx.post(v2, content=body, headers=empty).status_code == 400


def test_the_lane_stands_aside_without_in_process_backends(
    home: Path, keys: dict[str, str], redis_url: str
) -> None:
    """Requests are held for the lane only where it can answer: not with the cache off,
    a Redis cache or a Redis rate limiter (they would pay for the holding for nothing)."""
    setups = {
        "cache off": {"cache": CacheSettings(enabled=False)},
        "redis cache": {
            "cache": CacheSettings(backend="redis"),
            "rate_limits": RateLimitSettings(backend="memory"),
            "redis_url": redis_url,
        },
        "redis limits": {
            "rate_limits": RateLimitSettings(backend="redis"),
            "cache": CacheSettings(backend="memory"),
            "redis_url": redis_url,
        },
    }
    for setup, options in setups.items():
        app = create_app(Settings(home=home, server=ServerSettings(models=["adder"]), **options))
        with serve_in_thread(app) as running:
            assert not app.running.fast_lane, setup
            assert _post(running.url, keys["app"]).status_code == 200
            assert _post(running.url, keys["app"]).status_code == 200
            assert _answered(app) == 0


class FailingOnAHit:
    """An access log that fails on purpose when it writes the first cache hit: a step
    on the lane that raises, after the hit was found (the worst moment)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, int]] = []
        self._failed = False

    def write(self, record: RequestRecord, latency_s: float, client: str | None) -> None:
        if record.cache == "hit" and not self._failed:
            self._failed = True
            raise RuntimeError("the access log broke")
        self.lines.append((record.request_id, record.cache, record.status))

    def close(self) -> None:
        pass


def test_a_failure_on_the_lane_is_answered_by_the_app(
    home: Path, keys: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """A hit on which the lane raises is answered by the ASGI path, as any hit would be
    (not as uvicorn's ``400 Invalid HTTP request``), and the failure is logged with the
    request id the answer carries, and counted."""
    access_log = FailingOnAHit()
    app = create_app(
        Settings(home=home, server=ServerSettings(models=["adder"])), access_log=access_log
    )
    with serve_in_thread(app) as running:
        assert _post(running.url, keys["app"]).headers["x-cache"] == "miss"
        with caplog.at_level(logging.ERROR, logger="servewell.http.protocol"):
            answer = _post(running.url, keys["app"])
        assert answer.status_code == 200
        assert answer.headers["x-cache"] == "hit"
        assert answer.json()["predictions"] == [3.0]
        request_id = answer.headers["x-request-id"]
        failures = [r for r in caplog.records if r.name == "servewell.http.protocol"]
        assert [r.getMessage() for r in failures] == [
            f"the fast lane failed on request {request_id}"
        ]
        assert _answered(app) == 0
        assert access_log.lines[-1] == (request_id, "hit", 200)  # the app's line
        metrics = httpx.get(running.url + "/metrics").text
        assert 'servewell_errors_total{code="fast_lane"} 1.0' in metrics
        assert _post(running.url, keys["app"]).headers["x-cache"] == "hit"
        assert _answered(app) == 1  # the lane answers again


def test_with_the_fast_lane_off_nothing_is_held(home: Path, keys: dict[str, str]) -> None:
    """``server.fast_lane: false``: no connection offers requests to the lane, and a hit
    is answered by the app with what the lane would have answered."""
    answers = {}
    for fast_lane in (True, False):
        app = create_app(
            Settings(home=home, server=ServerSettings(models=["adder"], fast_lane=fast_lane))
        )
        with serve_in_thread(app) as running, httpx.Client(base_url=running.url) as client:
            headers = {
                "Authorization": f"Bearer {keys['app']}",
                "Content-Type": "application/json",
                "X-Request-Id": "same",
            }
            assert client.post(URL, content=BODY, headers=headers).headers["x-cache"] == "miss"
            hit = client.post(URL, content=BODY, headers=headers)
            lanes = [protocol.lane for protocol in running.server_state.connections]
            assert len(lanes) == 1
            assert (lanes[0] is not None) is fast_lane
            assert _answered(app) == (1 if fast_lane else 0)
        ignored = {"date", "ratelimit-reset"}  # the reset: seconds, from the clock
        answers[fast_lane] = (
            hit.status_code,
            hit.content,
            {name: value for name, value in hit.headers.items() if name not in ignored},
        )
    assert answers[True] == answers[False]
    assert answers[False][2]["x-cache"] == "hit"
