"""``servewell serve`` as a real process on a loopback port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from servewell.bootstrap import build_services
from servewell.settings import Settings
from serving_models import register_adder, serve_process

pytestmark = pytest.mark.slow

ROW = [5.1, 3.5, 1.4, 0.2]


@contextmanager
def running_server(home: Path, *args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    with serve_process(home, "--no-auth", *args) as running:
        yield running


def _open_request(port: int, body: bytes) -> socket.socket:
    """A request whose headers and half of its body are sent; the rest is held back."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (
        f"POST /v1/models/iris:predict HTTP/1.1\r\nHost: test\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    connection.sendall(head + body[: len(body) // 2])
    return connection


def _finish_request(connection: socket.socket, body: bytes) -> str:
    connection.sendall(body[len(body) // 2 :])
    connection.settimeout(30)
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = connection.recv(65536)
        if not chunk:
            break
        answer += chunk
    connection.close()
    return answer.split(b"\r\n", 1)[0].decode()


def test_sigterm_finishes_requests_in_flight_and_exits_0(model_home: Path) -> None:
    with running_server(model_home, "--models", "iris") as (url, process):
        port = int(url.rsplit(":", 1)[1])
        body = json.dumps({"instances": [ROW] * 50}).encode()
        in_flight = [_open_request(port, body) for _ in range(8)]
        time.sleep(0.3)  # the server has read every request's headers
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # ... and is draining now
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/v2/health/live")  # new connections are refused
        statuses = [_finish_request(connection, body) for connection in in_flight]
        output, _ = process.communicate(timeout=30)
    assert statuses == ["HTTP/1.1 200 OK"] * 8
    assert process.returncode == 0
    lines = [json.loads(line) for line in output.splitlines()]
    predictions = [line for line in lines if line.get("path") == "/v1/models/iris:predict"]
    assert [line["status"] for line in predictions] == [200] * 8


def test_json_lines_on_stdout(model_home: Path) -> None:
    with running_server(model_home, "--models", "iris") as (url, process):
        httpx.post(f"{url}/v1/models/iris:predict", json={"instances": [ROW]})
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    lines = [json.loads(line) for line in output.splitlines()]
    access = [line for line in lines if line["logger"] == "servewell.access"]
    assert access[-1]["path"] == "/v1/models/iris:predict"
    assert access[-1]["model"] == "iris"
    assert {"time", "request_id", "method", "status", "latency_ms", "batch_size"} <= set(access[-1])


def test_a_stdout_nobody_reads_never_stops_the_server(model_home: Path) -> None:
    """Nobody reads the server's stdout here until the end: past the pipe's 64 KiB its
    access lines used to block the event loop, and the server stopped answering. Now
    they wait for the reader (bounded), every request is answered, and once stdout is
    read again every line comes out, none lost."""
    count = 1500  # about 450 KB of access lines: the pipe is full after some 250
    with running_server(model_home, "--models", "iris") as (url, process):
        with httpx.Client(base_url=url, timeout=30) as client:
            statuses = [
                client.post("/v1/models/iris:predict", json={"instances": [ROW]}).status_code
                for _ in range(count)
            ]
            metrics = client.get("/metrics").text
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert statuses == [200] * count
    assert "servewell_log_lines_dropped_total 0.0" in metrics
    lines = [json.loads(line) for line in output.splitlines()]
    predictions = [line for line in lines if line.get("path") == "/v1/models/iris:predict"]
    assert len(predictions) == count


def _requests_total(text: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "servewell_requests_total" and sample.labels["model"] == "iris"
    )


def test_two_workers_give_one_coherent_metrics_page(model_home: Path) -> None:
    with running_server(model_home, "--models", "iris", "--workers", "2") as (url, process):
        for _ in range(60):  # a new connection each: the kernel spreads them over both
            with httpx.Client() as client:
                assert (
                    client.post(
                        f"{url}/v1/models/iris:predict", json={"instances": [ROW]}
                    ).status_code
                    == 200
                )
        pages = []
        for _ in range(6):
            with httpx.Client() as client:
                pages.append(client.get(f"{url}/metrics").text)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert [_requests_total(page) for page in pages] == [60.0] * 6
    assert process.returncode == 0


def test_every_worker_holds_clients_to_the_edge_limits(model_home: Path) -> None:
    """With ``--workers 2`` each process keeps the limits (and counts its refusals into
    the one metrics page): headers over the limit get 431, silent connections close."""
    env = {
        "SERVEWELL_SERVER__HEADER_TIMEOUT_S": "0.5",
        "SERVEWELL_SERVER__MAX_HEADER_BYTES": "4096",
    }
    big = b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n"
    with serve_process(model_home, "--no-auth", "--models", "iris", "--workers", "2", env=env) as (
        url,
        _,
    ):
        port = int(url.rsplit(":", 1)[1])
        answers = []
        for _ in range(6):  # a new connection each: the kernel spreads them over both
            with socket.create_connection(("127.0.0.1", port), timeout=30) as silent:
                assert silent.recv(65536) == b""  # closed by the header timeout
            with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
                connection.sendall(big)
                answers.append(_until_closed(connection).split(b"\r\n", 1)[0])
        page = httpx.get(f"{url}/metrics", timeout=30).text
    assert answers == [b"HTTP/1.1 431 Request Header Fields Too Large"] * 6
    errors = {
        sample.labels["code"]: sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
        if sample.name == "servewell_errors_total"
    }
    assert errors["headers_too_large"] == 6


def _until_closed(connection: socket.socket) -> bytes:
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def test_a_port_in_use_fails_fast_with_one_line_and_exit_8(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "servewell"),
                "serve",
                "--allow-empty",
                "--port",
                str(port),
            ],
            cwd=tmp_path,
            env={**os.environ, "SERVEWELL_HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 8  # it used to exit 3 after startup, with a JSON log line
    assert result.stderr.strip() == (
        f"error: port {port} on 127.0.0.1 is in use: Address already in use"
    )


@pytest.fixture
def tampered_home(tmp_path: Path) -> Path:
    """A home whose one model, ``adder``, no longer matches its sha256: it resolves (the
    checks before uvicorn pass) but cannot load."""
    home = tmp_path / "home"
    services = build_services(Settings(home=home))
    try:
        register_adder(services, tmp_path)
    finally:
        services.close()
    (artifact,) = (home / "artifacts").rglob("*/*/*")
    artifact.chmod(0o644)
    artifact.write_bytes(artifact.read_bytes() + b"changed")
    return home


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--workers", "2"], {}),  # workers load before serving
        ([], {"SERVEWELL_SERVER__LOAD_BEFORE_SERVING": "true"}),
    ],
    ids=["two-workers", "one-process"],
)
def test_a_server_that_cannot_start_stops_with_its_reason_and_exit_9(
    tampered_home: Path, args: list[str], env: dict[str, str]
) -> None:
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "servewell"), "serve", "--port", "0", *args],
        cwd=tampered_home.parent,
        env={**os.environ, "SERVEWELL_HOME": str(tampered_home), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: killed whole if it hangs
    )
    try:
        stdout, stderr = process.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate(timeout=30)
        pytest.fail(f"the server neither served nor stopped (it restarted workers):\n{stdout}")
    reason = "cannot load adder: artifact store://sha256/"
    assert process.returncode == 9, stderr + stdout
    assert stderr.startswith(f"error: the server failed to start: {reason}")
    assert len(stderr.strip().splitlines()) == 1
    lines = [json.loads(line) for line in stdout.splitlines()]
    failures = [line for line in lines if line["logger"] == "servewell.serving.startup"]
    assert failures, stdout
    for failure in failures:
        assert failure["level"] == "error"
        assert failure["message"].startswith(f"the server failed to start: {reason}")
        assert "was modified after registration" in failure["message"]
    started = [line for line in lines if line["message"].startswith("Started server process")]
    assert len(started) <= 2  # no worker started again
