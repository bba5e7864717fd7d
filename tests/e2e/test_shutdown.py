"""SIGTERM on a real ``servewell serve``: readiness turns false at once, every request
already received is answered, the port closes after ``server.shutdown_delay_s``, what
still waits at the drain deadline is answered 503, and the process exits 0."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from redis_server import free_port
from serving_models import PYTHON_MODELS, register_python, serve_process

pytestmark = pytest.mark.slow

ROW = [5.1, 3.5, 1.4, 0.2]
IRIS = "/v1/models/iris:predict"
SLOW = "/v1/models/slow:predict"
#: A body that arrives in several pieces (about 40 KB).
BODY = json.dumps({"instances": [ROW] * 2000}).encode()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def _head(path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()


Connect = Callable[[int], socket.socket]


@pytest.fixture
def connect() -> Iterator[Connect]:
    """Opens a connection to a loopback port; every one is closed after the test."""
    opened: list[socket.socket] = []

    def connect(port: int) -> socket.socket:
        opened.append(socket.create_connection(("127.0.0.1", port), timeout=60))
        return opened[-1]

    yield connect
    for connection in opened:
        connection.close()


class RawRequest:
    """One request on a connection of its own, sent up to byte ``sent``; ``finish``
    sends the rest and reads the answer."""

    def __init__(self, connection: socket.socket, path: str, body: bytes, sent: int) -> None:
        self.message = _head(path, body) + body
        self.sent = sent
        self.connection = connection
        self.connection.sendall(self.message[:sent])

    def finish(self) -> Answer:
        self.connection.sendall(self.message[self.sent :])
        return read_answer(self.connection)


def read_answer(connection: socket.socket) -> Answer:
    """The response on ``connection``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            raise AssertionError(f"the server closed the connection after {data!r}")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    while len(body) < int(headers.get("content-length", "0")):
        chunk = connection.recv(65536)
        if not chunk:
            raise AssertionError(f"the server closed the connection after {data + body!r}")
        body += chunk
    return Answer(int(status_line.split()[1]), headers, body)


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _stop(process: subprocess.Popen[str]) -> str:
    """Kill the server's process group and return what it wrote."""
    os.killpg(process.pid, signal.SIGKILL)
    return process.communicate(timeout=30)[0]


def wait_until_refused(port: int, process: subprocess.Popen[str], timeout_s: float = 60) -> None:
    """Until new connections to ``port`` are refused (the listening socket is closed)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        except ConnectionRefusedError:
            return
        time.sleep(0.05)
    raise AssertionError(f"port {port} still open {timeout_s} s after SIGTERM:\n{_stop(process)}")


def _kept_alive(connection: socket.socket) -> socket.socket:
    """``connection``, answered once and idle now, kept alive."""
    body = json.dumps({"instances": [ROW]}).encode()
    connection.sendall(_head(IRIS, body) + body)
    answer = read_answer(connection)
    assert answer.status == 200
    assert "connection" not in answer.headers
    return connection


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_answers_every_request_already_received(
    model_home: Path, workers: int, connect: Connect
) -> None:
    """Connected but silent, headers half sent, headers sent, half the body sent, all
    sent: each is answered 200 after SIGTERM, once the port is closed. uvicorn used to
    close the first two kinds at once (and reset connections still in the accept queue),
    and with workers the supervisor kept the port open while nobody accepted."""
    head = len(_head(IRIS, BODY))
    points = (0, head // 2, head, head + len(BODY) // 2, head + len(BODY))
    arguments = ("--no-auth", "--models", "iris", "--workers", str(workers))
    with serve_process(model_home, *arguments) as (url, process):
        port = _port(url)
        idle = _kept_alive(connect(port))
        received = [
            RawRequest(connect(port), IRIS, BODY, sent) for sent in points for _ in range(3)
        ]
        process.send_signal(signal.SIGTERM)
        wait_until_refused(port, process)
        answers = [request.finish() for request in received]
        end_of_idle = idle.recv(1)  # the idle keep-alive connection is closed, not reset
        output, _ = process.communicate(timeout=60)
    assert [answer.status for answer in answers] == [200] * len(received), output
    finished_after = [
        a for r, a in zip(received, answers, strict=True) if r.sent < head + len(BODY)
    ]
    assert {answer.headers.get("connection") for answer in finished_after} == {"close"}
    assert end_of_idle == b""
    assert process.returncode == 0, output
    assert not [line for line in output.splitlines() if '"level":"error"' in line]


def test_readiness_turns_false_at_once_and_serving_goes_on_through_the_delay(
    model_home: Path,
) -> None:
    """With ``server.shutdown_delay_s``, SIGTERM turns readiness false while the port
    stays open: new connections and a keep-alive connection's next request are served,
    with ``Connection: close``; then the port closes and the process exits 0."""
    environment = {"SERVEWELL_SERVER__SHUTDOWN_DELAY_S": "10"}
    with serve_process(model_home, "--no-auth", "--models", "iris", env=environment) as (
        url,
        process,
    ):
        with httpx.Client(base_url=url, timeout=30) as kept:
            assert kept.post(IRIS, json={"instances": [ROW]}).status_code == 200
            process.send_signal(signal.SIGTERM)
            ready = _wait_until_unready(url, process)
            health = httpx.get(f"{url}/health", timeout=30)
            fresh = httpx.post(f"{url}{IRIS}", json={"instances": [ROW]}, timeout=30)
            again = kept.post(IRIS, json={"instances": [ROW]})
        wait_until_refused(_port(url), process)
        output, _ = process.communicate(timeout=60)
    assert ready.json() == {"ready": False}
    assert (health.status_code, health.text) == (503, "not ready: shutting down\n")
    assert (fresh.status_code, fresh.headers["connection"]) == (200, "close")
    assert (again.status_code, again.headers["connection"]) == (200, "close")
    assert process.returncode == 0, output


def _wait_until_unready(url: str, process: subprocess.Popen[str]) -> httpx.Response:
    """The first readiness answer that is not 200 (each on a new connection)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(f"{url}/v2/health/ready", timeout=30)
        except httpx.TransportError as exc:
            log = _stop(process)
            raise AssertionError(f"readiness unreachable after SIGTERM: {exc}\n{log}") from exc
        if answer.status_code != 200:
            assert answer.status_code == 503
            return answer
        time.sleep(0.02)
    raise AssertionError(f"still ready 30 s after SIGTERM:\n{_stop(process)}")


@pytest.fixture(scope="module")
def slow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from servewell.bootstrap import build_services
    from servewell.settings import Settings

    home = tmp_path_factory.mktemp("slow") / "home"
    services = build_services(Settings(home=home))
    try:
        # Sleeps 100 ms a call: a lower bound however fast or busy the machine (the ONNX
        # matrix product it replaced ran 60 calls within the 1 s drain on a quiet one).
        register_python(services, "slow", "slow", artifacts=PYTHON_MODELS / "slow_artifacts")
    finally:
        services.close()
    return home


@pytest.mark.parametrize("workers", [1, 2])
def test_requests_still_waiting_at_the_drain_deadline_get_503(
    slow_home: Path, connect: Connect, workers: int
) -> None:
    """A model too slow to answer its queue within ``server.drain_timeout_s``: what still
    waits at the deadline is answered 503 with Retry-After and ``Connection: close``,
    saying the server is shutting down (REST and V2 each in their own error shape); each
    worker logs one line counting them, and nothing logs a traceback (uvicorn used to
    cancel them: 500 and a traceback each)."""
    environment = {
        "SERVEWELL_SERVER__DRAIN_TIMEOUT_S": "1",
        "SERVEWELL_SERVER__BATCHING__ENABLED": "false",  # one request per model call
    }
    rest = json.dumps({"instances": [1.0]}).encode()
    v2 = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]})
    requests = [(SLOW, rest), ("/v2/models/slow/infer", v2.encode())] * 30
    arguments = ("--no-auth", "--workers", str(workers))
    with serve_process(slow_home, *arguments, env=environment) as (url, process):
        received = [
            RawRequest(connect(_port(url)), path, body, len(_head(path, body) + body))
            for path, body in requests
        ]
        process.send_signal(signal.SIGTERM)
        answers = [request.finish() for request in received]
        output, _ = process.communicate(timeout=60)
    statuses = [answer.status for answer in answers]
    assert set(statuses) <= {200, 503}, output
    assert 503 in statuses, output
    for (path, _), answer in zip(requests, answers, strict=True):
        if answer.status == 503:
            assert answer.headers["retry-after"] == "1"
            assert answer.headers["connection"] == "close"
            error = json.loads(answer.body)
            assert "shutting down" in error["error"]
            assert error.get("code") == (None if path.startswith("/v2") else "shutting_down")
    lines = [json.loads(line) for line in output.splitlines()]
    assert not [line for line in lines if "exception" in line or line["level"] == "error"]
    counts = [
        int(found.group(1))
        for line in lines
        if (found := re.search(r": (\d+) requests cut off", line.get("message", "")))
    ]
    assert 1 <= len(counts) <= workers, output
    assert sum(counts) == statuses.count(503), output
    assert process.returncode == 0, output


def _workers_of(pid: int) -> list[int]:
    """The worker processes of a supervisor (its spawned children)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [
        int(child)
        for child in children
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


def _running(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie has exited; nobody reaped it yet


def test_workers_whose_supervisor_is_killed_shut_down(model_home: Path) -> None:
    """kill -9 of the supervisor left its workers serving the port for ever, with nobody
    to replace them and the port taken for the next `servewell serve`."""
    arguments = ("--no-auth", "--models", "iris", "--workers", "2")
    with serve_process(model_home, *arguments) as (url, process):
        workers = _workers_of(process.pid)
        assert len(workers) == 2, workers
        os.kill(process.pid, signal.SIGKILL)
        wait_until_refused(_port(url), process)
        deadline = time.monotonic() + 60
        while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_running(pid) for pid in workers)


def test_workers_whose_supervisor_is_killed_before_they_start_shut_down(model_home: Path) -> None:
    """A worker took its parent's pid for its supervisor's once it had imported the app:
    a supervisor killed before then left the worker a parent of 1, and it served on for
    ever. The supervisor is killed here as soon as both workers exist."""
    port = free_port()
    environment = {**os.environ, "SERVEWELL_HOME": str(model_home)}
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [str(Path(sys.executable).parent / "servewell"), "serve", "--port", str(port)]
    arguments = ["--no-auth", "--models", "iris", "--workers", "2"]
    process = subprocess.Popen(
        [*command, *arguments],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: list[int] = []
    deadline = time.monotonic() + 60
    while len(workers) < 2 and time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(FileNotFoundError):
            workers = _workers_of(process.pid)
        time.sleep(0.01)
    if len(workers) < 2:
        process.kill()
    assert len(workers) == 2, f"the supervisor made {workers}"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    deadline = time.monotonic() + 60
    while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    still = [pid for pid in workers if _running(pid)]
    for pid in still:
        os.kill(pid, signal.SIGKILL)
    assert not still, f"workers {still} outlived their supervisor"
