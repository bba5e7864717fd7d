"""Deadlines on a real ``servewell serve`` process with real Python models: the model's
``timeout_ms`` and the ``Request-Timeout`` header (504 naming model and deadline, over V2
and REST; the header capped by the setting; a malformed one 400), queued requests past
their deadline or whose client left never reaching the model (the gated model writes
down every call it gets), ``server.max_queue_wait_ms`` shedding with 503, a hung model
holding only its own requests, and SIGTERM ending a server whose model hangs.

No timing assertions: every wait is a poll with a generous bound, and the gated model
holds a call until the test opens its gate."""

from __future__ import annotations

import json
import re
import signal
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from servewell.bootstrap import build_services
from servewell.settings import Settings
from serving_models import register_python, serve_process

#: Every client call waits this long at most: generous, never a measure.
CLIENT_TIMEOUT_S = 60.0
HANG_TIMEOUT_MS = 300


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("deadlines") / "home"
    services = build_services(Settings(home=home))
    try:
        register_python(services, "sum", "sum", signature="sum.json")
        register_python(services, "hang", "hang")
        register_python(services, "gated", "gated")
    finally:
        services.close()
    return home


class Gates:
    """The gated model's folder: the calls it got, and the gates a test opens."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder

    def calls(self) -> list[list[float]]:
        log = self.folder / "calls.log"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]

    def wait_for_call(self, values: list[float]) -> None:
        _poll(lambda: values in self.calls(), f"a call of the model with {values}")

    def open(self, k: int) -> None:
        (self.folder / f"open-{k}").touch()


def _environment(home: Path, gates: Gates, **settings: str) -> dict[str, str]:
    unpacked = home.parent / "unpacked"  # a killed server cannot clean up its own
    unpacked.mkdir(exist_ok=True)
    return {
        "TMPDIR": str(unpacked),
        "GATED_MODEL_DIR": str(gates.folder),
        **{f"SERVEWELL_{name.upper()}": value for name, value in settings.items()},
    }


@pytest.fixture(scope="module")
def gates(home: Path) -> Gates:
    return Gates(home.parent / "gates")


@pytest.fixture(scope="module")
def url(home: Path, gates: Gates) -> Iterator[str]:
    # Every test here times the hung model out again: its breaker (which opens on
    # repeated timeouts, tests/http/test_breaker_serving.py) would answer 503 instead.
    env = _environment(
        home,
        gates,
        models__hang__timeout_ms=str(HANG_TIMEOUT_MS),
        models__hang__breaker__enabled="false",
        models__gated__breaker__enabled="false",
    )
    with serve_process(home, "--no-auth", "--models", "sum,hang,gated", env=env) as (served, _):
        yield served
    for k in range(10):
        gates.open(k)


def _rest(url: str, model: str, x: list[float], **headers: str) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/models/{model}:predict",
        json={"instances": [{"x": value} for value in x]},
        headers=headers,
        timeout=CLIENT_TIMEOUT_S,
    )


def _v2(url: str, model: str, x: list[float], **headers: str) -> httpx.Response:
    return httpx.post(
        f"{url}/v2/models/{model}/infer",
        json={"inputs": [{"name": "x", "datatype": "FP32", "shape": [len(x)], "data": x}]},
        headers=headers,
        timeout=CLIENT_TIMEOUT_S,
    )


def _sum(url: str, protocol: str, **headers: str) -> httpx.Response:
    if protocol == "rest":
        return httpx.post(
            f"{url}/v1/models/sum:predict",
            json={"instances": [{"x": 1, "y": 2}]},
            headers=headers,
            timeout=CLIENT_TIMEOUT_S,
        )
    inputs = [{"name": n, "datatype": "FP32", "shape": [1], "data": [1]} for n in "xy"]
    return httpx.post(
        f"{url}/v2/models/sum/infer",
        json={"inputs": inputs},
        headers=headers,
        timeout=CLIENT_TIMEOUT_S,
    )


CALLS = {"rest": _rest, "v2": _v2}


def _poll(done: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    """Until ``done()``; a few times a second only: each request to the server writes an
    access line to a pipe nobody reads until the server ends (``serve_process``)."""
    give_up_at = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > give_up_at:
            raise AssertionError(f"waited {timeout_s} s for {what}")
        time.sleep(0.25)


def _metric(url: str, name: str, **labels: str) -> float:
    """A sample's value in /metrics (0 when absent); labels in any order."""
    text = httpx.get(f"{url}/metrics", timeout=CLIENT_TIMEOUT_S).text
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match is None:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if found == labels:
            return float(match.group(2))
    return 0.0


def _in_background(call: Callable[[], httpx.Response]) -> Future[httpx.Response]:
    pool = ThreadPoolExecutor(1)
    future = pool.submit(call)
    pool.shutdown(wait=False)
    return future


# --- 504: the model's timeout_ms and the Request-Timeout header ---------------------------


@pytest.mark.parametrize("protocol", ["rest", "v2"])
def test_a_model_past_its_timeout_is_a_504_naming_the_model_and_the_deadline(
    url: str, protocol: str
) -> None:
    answer = CALLS[protocol](url, "hang", [-1.0])
    assert answer.status_code == 504, answer.text
    message = f"model 'hang' did not answer within the deadline of {HANG_TIMEOUT_MS} ms"
    if protocol == "rest":
        assert answer.json()["code"] == "deadline_exceeded"
        assert answer.json()["error"] == message
        assert answer.json()["detail"] == {"model": "hang", "timeout_ms": HANG_TIMEOUT_MS}
    else:
        assert answer.json() == {"error": message}


@pytest.mark.parametrize("protocol", ["rest", "v2"])
def test_request_timeout_asks_for_less_never_for_more(url: str, protocol: str) -> None:
    shorter = CALLS[protocol](url, "hang", [-1.0], **{"Request-Timeout": "120"})
    assert shorter.status_code == 504, shorter.text
    assert "within the deadline of 120 ms" in shorter.json()["error"]
    longer = CALLS[protocol](url, "hang", [-1.0], **{"Request-Timeout": "600000"})
    assert longer.status_code == 504, longer.text
    assert f"within the deadline of {HANG_TIMEOUT_MS} ms" in longer.json()["error"]


@pytest.mark.parametrize("protocol", ["rest", "v2"])
@pytest.mark.parametrize(
    "value", ["abc", "-5", "0", "", "nan", "inf", "1ms", "1_000", "+100", "1e3", "0x10"]
)
def test_a_malformed_request_timeout_is_a_400_naming_the_header(
    url: str, protocol: str, value: str
) -> None:
    answer = _sum(url, protocol, **{"Request-Timeout": value})
    assert answer.status_code == 400, answer.text
    assert "Request-Timeout header is a positive number of milliseconds" in (answer.json()["error"])
    fine = _sum(url, protocol, **{"Request-Timeout": "5000.5"})
    assert fine.status_code == 200, fine.text


# --- a hung model holds only its own requests ---------------------------------------------


def test_a_hung_model_holds_only_its_own_requests(url: str) -> None:
    assert _rest(url, "hang", [-1.0]).status_code == 504  # its thread now hangs for ever
    waiting = _in_background(lambda: _v2(url, "hang", [5.0]))  # queued behind the hung call
    # Whatever else is asked answers, while the model hangs.
    assert httpx.get(f"{url}/v2/health/ready", timeout=CLIENT_TIMEOUT_S).status_code == 200
    assert httpx.get(f"{url}/v2/health/live", timeout=CLIENT_TIMEOUT_S).status_code == 200
    metrics = httpx.get(f"{url}/metrics", timeout=CLIENT_TIMEOUT_S)
    assert metrics.status_code == 200
    assert 'model="hang",protocol="rest",status="504"' in metrics.text
    for protocol in ("rest", "v2"):
        assert _sum(url, protocol).status_code == 200
    assert _rest(url, "gated", [7.0]).status_code == 200
    assert waiting.result(timeout=CLIENT_TIMEOUT_S).status_code == 504  # at its deadline
    assert _rest(url, "hang", [5.0]).status_code == 504  # it holds its own requests only


# --- queued requests nobody waits for never reach the model ---------------------------------


def test_queued_requests_past_their_deadline_never_reach_the_model(url: str, gates: Gates) -> None:
    before = _metric(url, "servewell_requests_expired_total", **_expired("gated", "deadline"))
    holding = _in_background(lambda: _rest(url, "gated", [-1.0]))
    gates.wait_for_call([-1.0])  # the model is busy with it: the next ones queue
    short = {"Request-Timeout": "200"}
    answers = [_rest(url, "gated", [11.0], **short), _v2(url, "gated", [12.0], **short)]
    answers.append(_rest(url, "gated", [13.0], **short))
    assert [answer.status_code for answer in answers] == [504] * 3
    after = _metric(url, "servewell_requests_expired_total", **_expired("gated", "deadline"))
    assert after - before == 3
    gates.open(1)
    assert holding.result(timeout=CLIENT_TIMEOUT_S).status_code == 200
    assert _rest(url, "gated", [14.0]).status_code == 200
    called = [values[0] for values in gates.calls()]
    assert 14.0 in called
    assert not {11.0, 12.0, 13.0} & set(called)


def test_a_client_that_leaves_while_its_request_waits_never_reaches_the_model(
    url: str, gates: Gates
) -> None:
    labels = _expired("gated", "disconnected")
    before = _metric(url, "servewell_requests_expired_total", **labels)
    holding = _in_background(lambda: _rest(url, "gated", [-2.0]))
    gates.wait_for_call([-2.0])
    v2_input = {"name": "x", "datatype": "FP32", "shape": [1], "data": [22]}
    requests = (
        ("/v1/models/gated:predict", json.dumps({"instances": [{"x": 21.0}]})),
        ("/v2/models/gated/infer", json.dumps({"inputs": [v2_input]})),
    )
    for path, body in requests:
        in_flight = _metric(url, "servewell_requests_in_flight")  # the scrape counts itself
        with _raw_request(url, path, body):
            _poll(
                lambda seen=in_flight: _metric(url, "servewell_requests_in_flight") > seen,
                "the request in the server",
            )
            time.sleep(0.2)  # from the gateway into the model's queue: a few loop turns
        # the connection is closed now, its request still queued behind the gated call
    _poll(
        lambda: _metric(url, "servewell_requests_expired_total", **labels) - before == 2,
        "both requests dropped as disconnected",
    )
    gates.open(2)
    assert holding.result(timeout=CLIENT_TIMEOUT_S).status_code == 200
    assert _rest(url, "gated", [23.0]).status_code == 200
    called = [values[0] for values in gates.calls()]
    assert 23.0 in called
    assert not {21.0, 22.0} & set(called)


def _expired(model: str, reason: str) -> dict[str, str]:
    return {"model": model, "version": "1", "reason": reason}


class _raw_request:
    """A keep-alive POST on a socket of its own, closed (unanswered) when the block ends."""

    def __init__(self, url: str, path: str, body: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=CLIENT_TIMEOUT_S)
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}"
        )
        self.sock.sendall(request.encode())

    def __enter__(self) -> _raw_request:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.sock.close()


# --- shedding on a slow queue, and SIGTERM with a hung model ---------------------------------


def test_a_queue_too_slow_for_new_requests_sheds_them_with_503(home: Path) -> None:
    gates = Gates(home.parent / "gates-shed")
    env = _environment(home, gates, server__max_queue_wait_ms="100")
    try:
        with serve_process(home, "--no-auth", "--models", "gated", env=env) as (url, _):
            holding = _in_background(lambda: _rest(url, "gated", [-4.0]))
            gates.wait_for_call([-4.0])
            queued = _in_background(lambda: _v2(url, "gated", [41.0]))
            shed = _first_shed(url)
            assert shed.status_code == 503, shed.text
            assert shed.headers["retry-after"] == "1"
            assert shed.json()["code"] == "overloaded"
            assert "is too slow to take more requests" in shed.json()["error"]
            gates.open(4)
            assert holding.result(timeout=CLIENT_TIMEOUT_S).status_code == 200
            assert queued.result(timeout=CLIENT_TIMEOUT_S).status_code == 200
            assert _rest(url, "gated", [43.0]).status_code == 200  # the queue is empty again
            assert 42.0 not in [values[0] for values in gates.calls()]
    finally:
        gates.open(4)


def _first_shed(url: str) -> httpx.Response:
    """New requests until one is shed: one sent before the queued request has waited
    100 ms joins the queue and times out (504) instead."""
    give_up_at = time.monotonic() + 30
    while True:
        answer = _rest(url, "gated", [42.0], **{"Request-Timeout": "300"})
        if answer.status_code != 504 or time.monotonic() > give_up_at:
            return answer


def test_sigterm_ends_a_server_whose_model_hangs(home: Path) -> None:
    gates = Gates(home.parent / "gates-sigterm")
    env = _environment(home, gates, server__drain_timeout_s="2")
    serving = serve_process(home, "--no-auth", "--models", "gated,sum", env=env)
    with serving as (url, process):
        hung = _in_background(lambda: _rest(url, "gated", [-5.0]))
        gates.wait_for_call([-5.0])  # it never returns: gate 5 is never opened
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0  # drain (2 s), then a moment for the model
        answer = hung.result(timeout=CLIENT_TIMEOUT_S)
        assert answer.status_code == 503
        assert answer.json()["code"] == "shutting_down"


def test_sigterm_does_not_wait_for_a_hung_call_nobody_waits_for(home: Path) -> None:
    """Its one caller got its 504: shutdown stops at once rather than at the drain
    deadline (120 s here), and says which model it waited for and how long at most."""
    gates = Gates(home.parent / "gates-abandoned")
    env = _environment(
        home,
        gates,
        server__drain_timeout_s="120",
        models__hang__timeout_ms=str(HANG_TIMEOUT_MS),
        models__hang__breaker__enabled="false",
    )
    log: list[str] = []
    with serve_process(home, "--no-auth", "--models", "hang", env=env, log=log) as (url, process):
        assert _rest(url, "hang", [-1.0]).status_code == 504  # its thread hangs for ever
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0  # generous, and far below the drain's 120 s
    stopping = [line for line in log[0].splitlines() if "stopping hang@1" in line]
    assert len(stopping) == 1, log[0]
    assert "waiting at most 120 s for its calls" in stopping[0]
