"""What no route serves, answered by the edge after the guard, logged and counted:
WebSocket handshakes (a real ``servewell serve`` process, and a server that speaks
WebSocket), and inference paths called with a method other than POST."""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from servewell.http import create_app
from servewell.observability import RequestRecord
from servewell.settings import ServerSettings, Settings
from serving_models import build_adder_home, create_key, serve_in_thread, serve_process


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_adder_home(tmp_path_factory.mktemp("refusal") / "home")


@pytest.fixture(scope="module")
def key(home: Path) -> str:
    return create_key(home, "refusal-app")


def _handshake(url: str, path: str, **headers: str) -> Any:
    """The HTTP answer to a real WebSocket handshake (which must not succeed)."""
    with pytest.raises(InvalidStatus) as refused:
        connect(url.replace("http://", "ws://") + path, additional_headers=headers, open_timeout=10)
    return refused.value.response


class ServerLog:
    """The JSON lines a server process writes, read as they come (bounded waits)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self.fd = process.stdout.fileno()
        self.lines: list[dict[str, Any]] = []
        self._partial = b""

    def access_line(self, path: str, timeout_s: float = 30) -> dict[str, Any]:
        """The first access line for ``path``; fails with the log past the deadline."""
        deadline = time.monotonic() + timeout_s
        while True:
            for line in self.lines:
                if line.get("logger") == "servewell.access" and line.get("path") == path:
                    self.lines.remove(line)
                    return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no access line for {path}; the server wrote {self.lines}")
            self._read(remaining)

    def _read(self, timeout_s: float) -> None:
        readable, _, _ = select.select([self.fd], [], [], timeout_s)
        if not readable:
            return
        data = os.read(self.fd, 65536)
        if not data:
            raise AssertionError(f"the server exited; it wrote {self.lines}")
        *whole, self._partial = (self._partial + data).split(b"\n")
        self.lines.extend(json.loads(line) for line in whole if line.startswith(b"{"))


def test_a_websocket_handshake_is_refused_after_the_guard_and_logged(home: Path, key: str) -> None:
    with serve_process(home, "--models", "adder") as (url, process):
        log = ServerLog(process)
        open_path = _handshake(url, "/v2/health/live")
        protected = _handshake(url, "/v2/models/adder")
        with_key = _handshake(url, "/v1/models/adder", Authorization=f"Bearer {key}")
        lines = [log.access_line(path) for path in ("/v2/health/live", "/v2/models/adder")]
        lines.append(log.access_line("/v1/models/adder"))
        metrics = httpx.get(url + "/metrics").text
    assert (open_path.status_code, protected.status_code, with_key.status_code) == (400, 401, 400)
    assert json.loads(with_key.body)["code"] == "websocket_unsupported"
    assert "does not speak WebSocket" in json.loads(with_key.body)["error"]
    assert "does not speak WebSocket" in json.loads(open_path.body)["error"]  # V2: {"error"}
    assert "API key is required" in json.loads(protected.body)["error"]
    assert with_key.headers["Connection"] == "close"
    assert [(line["method"], line["status"]) for line in lines] == [
        ("GET", 400),
        ("GET", 401),
        ("GET", 400),
    ]
    assert lines[2]["caller"] == "refusal-app"
    assert 'servewell_errors_total{code="websocket_unsupported"} 2.0' in metrics


class Lines:
    """An access log that keeps what it is given."""

    def __init__(self) -> None:
        self.records: list[tuple[RequestRecord, str | None]] = []

    def write(self, record: RequestRecord, latency_s: float, client: str | None) -> None:
        self.records.append((record, client))

    def close(self) -> None:
        pass


def test_a_websocket_that_reaches_the_app_is_closed_and_logged(home: Path, key: str) -> None:
    """Under a server that speaks WebSocket (not ``servewell serve``), the app closes the
    connection before accepting it (the server answers 403) and records it."""
    lines = Lines()
    app = create_app(Settings(home=home, server=ServerSettings(models=["adder"])), access_log=lines)
    with serve_in_thread(app, ws="websockets-sansio") as server:
        refused = _handshake(server.url, "/v2/models/adder", **{"X-Request-Id": "ws-1"})
        metrics = httpx.get(server.url + "/metrics").text
    assert refused.status_code == 403
    (record, client), *_ = (line for line in lines.records if line[0].path == "/v2/models/adder")
    assert (record.request_id, record.method, record.status) == ("ws-1", "GET", 403)
    assert record.error == "websocket_unsupported"
    assert client == "127.0.0.1"
    assert 'servewell_errors_total{code="websocket_unsupported"} 1.0' in metrics
    assert 'protocol="v2",status="403"' in metrics


@pytest.fixture(scope="module")
def server(home: Path) -> Iterator[str]:
    app = create_app(Settings(home=home, server=ServerSettings(models=["adder"])))
    with serve_in_thread(app) as running:
        yield running.url


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/adder:predict",
        "/v1/models/adder/versions/1:predict",
        "/v2/models/adder/infer",
        "/v2/models/adder/versions/1/infer",
    ],
)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_an_inference_path_without_post_is_405(
    server: str, key: str, path: str, method: str
) -> None:
    answer = httpx.request(method, server + path, headers={"X-API-Key": key})
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    body = answer.json()
    assert body["error"] == f"method {method} is not allowed on {path}; use POST"
    if path.startswith("/v2/"):
        assert set(body) == {"error"}  # V2 keeps the protocol's error body
    else:
        assert body["code"] == "method_not_allowed"


def test_head_on_an_inference_path_is_405_without_a_body(server: str, key: str) -> None:
    answer = httpx.head(server + "/v1/models/adder:predict", headers={"X-API-Key": key})
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    assert answer.content == b""


def test_a_wrong_method_passes_the_guard_first_and_is_counted(server: str, key: str) -> None:
    assert httpx.get(server + "/v1/models/adder:predict").status_code == 401
    before = httpx.get(server + "/metrics").text
    assert (
        httpx.get(server + "/v2/models/adder/infer", headers={"X-API-Key": key}).status_code == 405
    )
    after = httpx.get(server + "/metrics").text
    counted = 'servewell_requests_total{model="",protocol="v2",status="405",version=""}'
    assert _count(after, counted) == _count(before, counted) + 1
    assert _count(after, 'servewell_errors_total{code="method_not_allowed"}') >= 1


def _count(metrics: str, series: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
