"""What a client may hold of the server (``http.edge_limits``), through raw sockets to a
real uvicorn server on a loopback port: headers over the limit get 431, headers and
bodies too slow get 408, connections that send nothing or idle are closed, and a
connection past the limit gets 503; with the fast lane on or off."""

from __future__ import annotations

import json
import resource
import select
import selectors
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from servewell.http import create_app
from servewell.settings import AuthSettings, ServerSettings, Settings
from serving_models import serve_in_thread

#: The longest the server may take to answer or close (bounded waits: a loaded machine).
WAIT_S = 20.0
LIVE = b"GET /v2/health/live HTTP/1.1\r\nHost: test\r\n\r\n"
PREDICT = "/v1/models/adder:predict"
BODY = b'{"inputs": {"x": [[1.0]], "y": [[2.0]]}}'


@contextmanager
def serving(home: Path, keep_alive_s: int = 5, **server: Any) -> Iterator[str]:
    """The adder, keys off, served with these ``server`` settings; yields the URL."""
    settings = Settings(
        home=home,
        auth=AuthSettings(enabled=False),
        server=ServerSettings(models=["adder"], **server),
    )
    with serve_in_thread(create_app(settings), timeout_keep_alive=keep_alive_s) as running:
        yield running.url


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=WAIT_S)
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def until_closed(connection: socket.socket) -> bytes:
    """All the server sends until it closes the connection; fails if it keeps it open."""
    received = b""
    while True:
        try:
            chunk = connection.recv(65536)
        except TimeoutError:
            pytest.fail(f"the connection is still open after {WAIT_S} s; got {received[:200]!r}")
        if not chunk:
            return received
        received += chunk


def one_response(connection: socket.socket) -> bytes:
    """One whole response (it has a content-length); the connection stays open."""
    data = b""
    while True:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            length = int(data[:end].lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            if len(data) >= end + 4 + length:
                return data
        chunk = connection.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk


def parse(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines)
    return int(status_line.split()[1]), headers, body


def refused(answer: bytes, status: int, code: str) -> str:
    """The message of an edge refusal, checked: status, code, and a closed connection."""
    got, headers, body = parse(answer)
    assert got == status, answer[:300]
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/json"
    document = json.loads(body)
    assert document["code"] == code
    return str(document["error"])


def post_head(length: int) -> bytes:
    return (
        f"POST {PREDICT} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def is_readable(connection: socket.socket) -> bool:
    return bool(select.select([connection], [], [], 0)[0])


# --- headers: size -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_head",
    [
        b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
        b"GET /v2/health/live?" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /v2/health/live HTTP/1.1\r\n"
        + b"".join(b"X-H%d: %s\r\n" % (n, b"a" * 60) for n in range(1200))
        + b"\r\n",
    ],
    ids=["one header", "the url", "many headers"],
)
def test_headers_over_the_default_limit_get_431_and_a_close(
    model_home: Path, request_head: bytes
) -> None:
    with serving(model_home) as url, connect(url) as connection:
        connection.sendall(request_head)
        message = refused(until_closed(connection), 431, "headers_too_large")
    assert "65536 bytes" in message


@pytest.mark.parametrize(
    "start",
    [
        b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\nX-Endless: ",
        f"POST {PREDICT} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        + b"3\r\n{}\n\r\n0\r\nX-Endless-Trailer: ",
    ],
    ids=["header", "trailer"],
)
def test_an_endless_header_is_refused_before_it_is_buffered(model_home: Path, start: bytes) -> None:
    """One header line that never ends (the parser hands a header over only when its
    line is complete, trailers too): refused once the limit is passed, not after 16 MiB."""
    most = 16 * 1024 * 1024
    with serving(model_home, max_header_bytes=8192) as url, connect(url) as connection:
        connection.sendall(start)
        sent = 0
        while sent < most and not is_readable(connection):
            connection.sendall(b"a" * 4096)
            sent += 4096
        refused(until_closed(connection), 431, "headers_too_large")
    assert sent < most


def test_headers_over_the_limit_behind_a_request_in_one_packet_get_431_after_its_answer(
    model_home: Path,
) -> None:
    """Pipelined: the first request is answered, then the one with too large headers is
    refused (the count of its bytes began mid-packet)."""
    big = b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n"
    with serving(model_home, max_header_bytes=8192) as url, connect(url) as connection:
        connection.sendall(LIVE + big)
        answer = until_closed(connection)
    first, _, second = answer.partition(b"HTTP/1.1 431 ")
    assert parse(first)[0] == 200
    refused(b"HTTP/1.1 431 " + second, 431, "headers_too_large")


def test_headers_under_the_limit_are_served_however_they_are_cut(model_home: Path) -> None:
    head = (
        b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
        + b"X-Token: " + b"t" * 6000 + b"\r\n"
        + b"".join(b"X-H%d: %s\r\n" % (n, b"v" * 40) for n in range(30)) + b"\r\n"
    )  # fmt: skip
    assert len(head) < 8192
    with serving(model_home, max_header_bytes=8192) as url, connect(url) as connection:
        for start in range(0, len(head), 100):
            connection.sendall(head[start : start + 100])
            time.sleep(0.001)
        status, _, _ = parse(until_closed(connection))
    assert status == 200


# --- headers: time -------------------------------------------------------------------------


def test_a_connection_that_sends_nothing_is_closed(model_home: Path) -> None:
    with serving(model_home, header_timeout_s=0.5) as url, connect(url) as connection:
        assert until_closed(connection) == b""


@pytest.mark.parametrize("answered_before", [0, 1], ids=["first request", "after an answer"])
def test_headers_that_stop_coming_get_408(model_home: Path, answered_before: int) -> None:
    with serving(model_home, header_timeout_s=0.5) as url, connect(url) as connection:
        for _ in range(answered_before):
            connection.sendall(LIVE)
            assert parse(one_response(connection))[0] == 200
        connection.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\nX-Half")
        message = refused(until_closed(connection), 408, "request_timeout")
    assert message == "the request headers did not arrive within 0.5 s"


def test_headers_trickled_byte_by_byte_get_408(model_home: Path) -> None:
    """Slowloris: a byte every few milliseconds keeps the connection busy, never done."""
    head = b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 2000
    with serving(model_home, header_timeout_s=0.5) as url, connect(url) as connection:
        for byte in head:
            if is_readable(connection):
                break
            connection.sendall(bytes([byte]))
            time.sleep(0.005)
        refused(until_closed(connection), 408, "request_timeout")


# --- bodies --------------------------------------------------------------------------------


def metric_samples(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"{url}/metrics", timeout=WAIT_S).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def wait_for_metrics(url: str, expected: dict[str, float]) -> None:
    """Until every ``name{label="value"}`` in ``expected`` has that value (summed over
    its other labels); fails with what the server shows at the deadline."""
    deadline = time.monotonic() + WAIT_S
    while True:
        samples = metric_samples(url)
        seen = {key: _sum_matching(samples, key) for key in expected}
        if seen == expected or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert seen == expected


def _sum_matching(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], key: str) -> float:
    name, _, selector = key.partition("{")
    wanted = {tuple(part.split("=")) for part in selector.rstrip("}").split(",") if part}
    return sum(v for (n, labels), v in samples.items() if n == name and wanted <= labels)


@pytest.mark.parametrize(
    "length", [100, 200_000], ids=["small (held by the fast lane)", "large (read by the app)"]
)
def test_a_body_short_of_its_length_gets_408_and_the_request_ends(
    model_home: Path, length: int
) -> None:
    with serving(model_home, body_timeout_s=0.5) as url:
        with connect(url) as connection:
            connection.sendall(post_head(length) + b"x" * (length // 2))
            message = refused(until_closed(connection), 408, "request_timeout")
        assert message == "the request body stopped arriving (nothing for 0.5 s)"
        wait_for_metrics(
            url,
            {
                "servewell_requests_in_flight": 1.0,  # the scrape itself
                "servewell_errors_total{code=request_timeout}": 1.0,
                "servewell_requests_total{status=500}": 0.0,
            },
        )
        if length > 64 * 1024:  # the app's request: recorded as the 408 it was
            wait_for_metrics(url, {"servewell_requests_total{status=408}": 1.0})


def test_a_body_that_keeps_coming_is_read_however_long_it_takes(model_home: Path) -> None:
    """The body timeout is the longest pause between pieces, not a time for the whole
    (12 bytes a second is above this server's minimum rate)."""
    pieces = [BODY[start : start + 3] for start in range(0, len(BODY), 3)]
    serve = serving(model_home, body_timeout_s=2.0, min_body_rate_bytes_s=4)
    with serve as url, connect(url) as connection:
        connection.sendall(post_head(len(BODY)))
        started = time.monotonic()
        for piece in pieces:
            time.sleep(0.25)
            connection.sendall(piece)
        status, _, body = parse(one_response(connection))
        took = time.monotonic() - started
    assert took > 2.0  # longer than the timeout as a whole, else this proves nothing
    assert status == 200, body


@pytest.mark.parametrize(
    "length", [100, 200_000], ids=["small (held by the fast lane)", "large (read by the app)"]
)
def test_a_body_trickled_below_the_minimum_rate_gets_408(model_home: Path, length: int) -> None:
    """A byte every 0.1 s never pauses for the body timeout, but averages 10 bytes a
    second: once the body has arrived for the timeout, that is below the minimum."""
    serve = serving(model_home, body_timeout_s=1.0, min_body_rate_bytes_s=1000)
    with serve as url, connect(url) as connection:
        connection.sendall(post_head(length))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not is_readable(connection):
            connection.sendall(b" ")  # JSON whitespace: a valid body, however long
            time.sleep(0.1)
        assert time.monotonic() < deadline, "the trickle was never cut off"
        message = refused(until_closed(connection), 408, "request_timeout")
        assert message == "the request body arrives slower than 1,000 bytes a second"
        wait_for_metrics(url, {"servewell_requests_total{status=500}": 0.0})


def test_bodies_arriving_at_once_share_one_budget(model_home: Path) -> None:
    """Two uploads of 600 KB at once do not fit a 1 MiB budget: the one that would pass
    it is refused 503, and the budget comes back when the other ends."""
    budget = 1024 * 1024
    serve = serving(model_home, max_body_bytes=budget, max_receiving_body_bytes=budget)
    with serve as url, connect(url) as first, connect(url) as second:
        for connection in (first, second):
            connection.sendall(post_head(budget) + b" " * 600_000)  # and then nothing
        deadline = time.monotonic() + WAIT_S
        answered: list[socket.socket] = []
        while not answered and time.monotonic() < deadline:
            answered = select.select([first, second], [], [], 0.1)[0]
        assert len(answered) == 1, "neither upload was refused"
        status, headers, body = parse(one_response(answered[0]))
        assert status == 503, body
        assert headers["retry-after"] == "1"
        assert json.loads(body)["code"] == "bodies_over_budget"
        waiting = second if answered[0] is first else first
        assert not is_readable(waiting)  # still arriving: not refused
        waiting.sendall(b" " * (budget - 600_000 - len(BODY)) + BODY)
        assert parse(one_response(waiting))[0] == 200  # the budget is given back then
        with connect(url) as third:
            third.sendall(post_head(700_000) + b" " * (700_000 - len(BODY)) + BODY)
            assert parse(one_response(third))[0] == 200


# --- connections ---------------------------------------------------------------------------


def test_a_connection_past_the_limit_gets_503_and_a_close(model_home: Path) -> None:
    with serving(model_home, keep_alive_s=60, max_connections=3) as url:
        held = [connect(url) for _ in range(3)]
        for connection in held:
            connection.sendall(LIVE)
            assert parse(one_response(connection))[0] == 200
        with connect(url) as extra:
            extra.sendall(LIVE)  # a client that asks at once: the answer must survive it
            answer = until_closed(extra)
        message = refused(answer, 503, "too_many_connections")
        assert parse(answer)[1]["retry-after"] == "1"
        assert "connection limit (3)" in message
        held.pop().close()
        assert _served_again(url)
        for connection in held:
            connection.close()


def _served_again(url: str) -> bool:
    """Whether a new connection is served once one of the held ones closed (the server
    notices the close a moment later)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        with connect(url) as connection:
            connection.sendall(LIVE.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
            if parse(until_closed(connection))[0] == 200:
                return True
        time.sleep(0.05)
    return False


def test_two_thousand_idle_connections_are_closed(model_home: Path) -> None:
    """A thousand that never ask (the header timeout) and a thousand idle after their
    answer (the keep-alive timeout): every one is closed by the server."""
    each = _room_for_connections(1000)
    with serving(model_home, keep_alive_s=1, header_timeout_s=1.0) as url:
        connections = [connect(url) for _ in range(each)]
        for _ in range(each):
            connection = connect(url)
            connection.sendall(LIVE)
            assert parse(one_response(connection))[0] == 200
            connections.append(connection)
        still_open = _closed_by_server(connections)
    assert still_open == 0


def _room_for_connections(wanted: int) -> int:
    """How many connections of each kind the test may open (each is two files here, the
    client's and the server's): ``wanted``, if the open-file limit can be raised to it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 4 * wanted + 256
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        soft = raised
    return min(wanted, (soft - 256) // 4)


def _closed_by_server(connections: list[socket.socket]) -> int:
    """Wait until the server closes them all (bounded); how many it left open."""
    selector = selectors.DefaultSelector()
    for connection in connections:
        selector.register(connection, selectors.EVENT_READ)
    deadline = time.monotonic() + 3 * WAIT_S
    open_now = len(connections)
    while open_now and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=1):
            connection = key.fileobj
            assert isinstance(connection, socket.socket)
            assert connection.recv(65536) == b""
            selector.unregister(connection)
            connection.close()
            open_now -= 1
    for key in list(selector.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    selector.close()
    return open_now
