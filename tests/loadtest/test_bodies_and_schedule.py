"""Bodies from a profile's sample or the signature, the invalid share, the open loop's
schedule, and both loops against a real HTTP server on a loopback port."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from servewell.core.signature import Signature
from servewell.loadtest.bodies import RequestSet, build_requests, generated_bodies
from servewell.loadtest.client import Target
from servewell.loadtest.schedule import (
    LANES,
    ConnectionBudget,
    Phases,
    Step,
    intended_time_s,
    keep_schedule,
    open_loop,
    open_loop_requests,
    run_step,
)
from servewell.loadtest.stats import NO_ANSWER, StepRecorder, StepResult, step_result

SIGNATURE = Signature.from_dict(
    {
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 2]}],
        "feature_names": ["a", "b"],
        "feature_ranges": {"a": {"min": 5, "max": 6}},
    }
)
PROFILE = {"sample": {"rows": 2, "features": {"a": [1.5, 2.5], "b": [10.0, 20.0]}}}


def test_rows_come_from_the_profiles_sample() -> None:
    path, bodies, _ = generated_bodies("m", None, SIGNATURE, PROFILE, "rest", 3)
    assert path == "/v1/models/m:predict"
    rows = [row for body in bodies for row in orjson.loads(body)["instances"]]
    assert {tuple(row) for row in rows} <= {(1.5, 10.0), (2.5, 20.0)}


def test_without_a_profile_values_keep_to_the_declared_ranges() -> None:
    path, bodies, _ = generated_bodies("m", 2, SIGNATURE, None, "v2", 4)
    assert path == "/v2/models/m/versions/2/infer"
    tensor = orjson.loads(bodies[0])["inputs"][0]
    assert tensor["shape"] == [4, 2]
    assert all(5 <= value <= 6 for value in tensor["data"][::2])
    binary = generated_bodies("m", None, SIGNATURE, None, "v2-binary", 1)
    assert "Inference-Header-Content-Length" in binary[2]


def test_the_invalid_share_is_exact_and_evenly_spread() -> None:
    bodies = generated_bodies("m", None, SIGNATURE, None, "rest", 1)
    requests = build_requests(Target.parse("http://127.0.0.1:9"), "m", None, bodies, "k", 0.05)
    picks = [requests.pick(k)[1] for k in range(1000)]
    assert sum(picks) == 50
    assert all(sum(picks[i : i + 20]) == 1 for i in range(0, 1000, 20))
    assert b"Authorization: Bearer k" in requests.pick(0)[0]


def test_the_open_loop_ramps_linearly_then_holds_the_rate() -> None:
    rate, ramp = 100.0, 2.0
    assert intended_time_s(0, rate, ramp) == 0.0
    assert intended_time_s(100, rate, ramp) == pytest.approx(ramp)  # rate * ramp / 2 by then
    assert intended_time_s(200, rate, ramp) - intended_time_s(199, rate, ramp) == pytest.approx(
        0.01
    )
    assert intended_time_s(50, rate, 0.0) == pytest.approx(0.5)


def test_open_loop_requests_counts_the_ramps_apart_from_the_measured_ones() -> None:
    assert open_loop_requests(100.0, 2.0, 5.0) == (600, 500)
    assert open_loop_requests(200.0, 0.0, 5.0) == (1000, 1000)
    # Too few to measure: 0.5/s over 1 s, or 1/s whose one request is the ramp's.
    assert open_loop_requests(0.5, 0.0, 1.0) == (0, 0)
    assert open_loop_requests(1.0, 1.0, 1.0) == (1, 0)
    assert open_loop_requests(0.5, 0.0, 3.0) == (1, 1)


class _Answer(BaseHTTPRequestHandler):
    """Reads a POST's body and answers 200 with a short body, keeping the connection."""

    protocol_version = "HTTP/1.1"
    # The headers and the body leave in two writes: with Nagle's algorithm the body
    # waits for the client's delayed ACK, 40 ms, and every answer took that long.
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.send_header("X-Servewell-Version", "1")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[Target]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.request_queue_size = 128  # an open loop may open dozens at once
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Target("127.0.0.1", server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def loopback() -> Iterator[Target]:
    yield from _serving(_Answer)


def _phases(target: Target, label: str) -> tuple[RequestSet, Phases]:
    """The requests of one body and the phases of a step without a ramp."""
    bodies = ("/v1/models/m:predict", [b'{"instances": [[1, 2]]}'], {})
    requests: RequestSet = build_requests(target, "m", None, bodies, None, 0.0)
    recorder = StepRecorder(label, 0.0)
    return requests, Phases(ramp=StepRecorder("ramp", 0.0), measured=recorder, measure_from=0.0)


def _run(step: Step, target: Target) -> tuple[StepRecorder, StepResult]:
    """One step against ``target`` (no ramp): its flushed recorder and its figures."""
    requests, phases = _phases(target, step.label)
    recorder = phases.measured
    asyncio.run(asyncio.wait_for(run_step(step, target, requests, phases, 10.0), 60))
    recorder.flush(step.duration_s)
    return recorder, step_result(recorder, step.target, step.duration_s)


def test_an_open_loop_step_records_each_answers_lateness_and_latency_from_its_send(
    loopback: Target,
) -> None:
    recorder, step = _run(Step("40/s", 1.0, rate_per_s=40), loopback)
    assert step.requests == 40
    assert step.errors == {}
    assert recorder.from_send.total == recorder.sent_late.total == step.requests
    late, from_send = step.sent_late_ms, step.latency_from_send_ms
    assert late is not None
    assert from_send is not None
    assert 0 <= late["p50"] <= late["max"]
    assert 0 < from_send["p50"] <= step.latency_ms["p50"]
    assert from_send["max"] <= step.latency_ms["max"]
    figures = step.to_dict()
    assert figures["sent_late_ms"] == late
    assert figures["latency_from_send_ms"] == from_send
    assert isinstance(figures["client_fell_behind"], bool)


def test_a_closed_loop_step_has_no_intended_time_so_no_lateness(loopback: Target) -> None:
    recorder, step = _run(Step("c=1", 0.3, concurrency=1), loopback)
    assert step.requests > 0
    assert recorder.from_send.total == recorder.sent_late.total == 0
    figures = step.to_dict()
    assert figures["sent_late_ms"] is None
    assert figures["latency_from_send_ms"] is None
    assert figures["client_fell_behind"] is None


class _SlowAnswer(_Answer):
    def do_POST(self) -> None:
        time.sleep(0.2)
        super().do_POST()


@pytest.fixture(scope="module")
def slow_loopback() -> Iterator[Target]:
    """A server that answers each request after 0.2 s."""
    yield from _serving(_SlowAnswer)


@pytest.mark.parametrize("rate", [100, 2800, 13000])
def test_a_lane_never_hands_out_a_request_before_it_is_due(rate: int) -> None:
    """The loop's timers can end a sleep up to a millisecond early (they count from a
    cached millisecond clock); a request handed out then would leave early, its
    lateness clipped to none."""
    handed_out: list[tuple[int, float, float]] = []

    def due(k: int, intended: float) -> None:
        handed_out.append((k, intended, time.perf_counter()))

    async def lanes() -> None:
        start = time.perf_counter()
        total, _ = open_loop_requests(rate, 0.0, 0.5)
        await asyncio.gather(
            *(keep_schedule(range(i, total, 4), start, lambda k: k / rate, due) for i in range(4))
        )

    uvloop = pytest.importorskip("uvloop")  # the loop the load test runs on
    uvloop.run(asyncio.wait_for(lanes(), 60))
    assert sorted(k for k, _, _ in handed_out) == list(range(rate // 2))
    early = [(k, intended - at) for k, intended, at in handed_out if at < intended]
    assert early == []


def test_the_connection_budget_is_twice_the_rate_times_the_answers_mean_latency() -> None:
    budget = ConnectionBudget(1000, max_connections=1024)
    assert budget.allowed() == LANES  # no answer yet: one a lane
    for _ in range(20_000):
        budget.answered_in(0.001)  # a millisecond at 1000/s: one in flight
    assert budget.allowed() == LANES
    for _ in range(20_000):  # the last 10 s of answers: the earlier ones are forgotten
        budget.answered_in(0.1)  # 100 in flight
    assert budget.allowed() == 200
    for _ in range(20_000):
        budget.answered_in(10.0)
    assert budget.allowed() == 1024


def test_a_servers_pauses_do_not_lift_the_connection_budget() -> None:
    """Each pause leaves a few slow answers, one a connection it held: 40 ms pauses at
    2,400/s (a mean of the last 64 answers allowed ~60 connections after each; it
    opened 232 against servewell's server), and 2.5 s ones at 1,000/s (what was in
    flight, all 16 connections through a pause, doubled the budget until it reached
    1,024). The second server is stopped nearly half the time: 10 s of answers hold
    three or four of its pauses, and the budget stays under three a lane."""
    for rate, pause_s, between in ((2400, 0.040, 2400), (1000, 2.5, 3000)):
        budget = ConnectionBudget(rate, max_connections=1024)
        for _ in range(5):
            for _ in range(between):
                budget.answered_in(0.0005)
            for _ in range(LANES):
                budget.answered_in(pause_s)
            assert budget.allowed() <= 3 * LANES, (rate, pause_s)


def test_an_open_loop_opens_the_connections_a_slow_servers_answers_need(
    slow_loopback: Target,
) -> None:
    """300/s against answers of 0.2 s keeps about 60 in flight: with only one
    connection a lane (16, 80 answers/s) most would still wait when the loop gives up,
    a second after the step's end."""
    requests, phases = _phases(slow_loopback, "300/s")
    run = open_loop(Step("300/s", 1.0, rate_per_s=300), slow_loopback, requests, phases, 1.0)
    asyncio.run(asyncio.wait_for(run, 60))
    assert phases.sent == 300
    assert phases.measured.statuses == {200: 300}


class _SometimesSlowAnswer(_Answer):
    """Every tenth request answered after 0.6 s, the rest at once."""

    answered = itertools.count()
    ports: set[int] = set()

    def do_POST(self) -> None:
        self.ports.add(self.client_address[1])
        if next(self.answered) % 10 == 9:  # not the first: its wait would lift any budget
            time.sleep(0.6)
        super().do_POST()


@pytest.fixture
def sometimes_slow_loopback() -> Iterator[Target]:
    yield from _serving(_SometimesSlowAnswer)


def test_an_open_loop_opens_the_connections_answers_slow_now_and_then_hold(
    sometimes_slow_loopback: Target,
) -> None:
    """At 300/s the slow tenth holds 18 connections all the time, while the median
    answer is quick: a budget of the rate times the median latency stays at one a lane
    (16), and the quick answers wait behind the slow ones for a connection."""
    requests, phases = _phases(sometimes_slow_loopback, "300/s")
    step = Step("300/s", 2.0, rate_per_s=300)
    run = open_loop(step, sometimes_slow_loopback, requests, phases, 2.0)
    asyncio.run(asyncio.wait_for(run, 60))
    assert phases.measured.statuses == {200: 600}
    assert len(_SometimesSlowAnswer.ports) > LANES


class _NoAnswer(_Answer):
    """Reads each request and never answers it (until the test ends)."""

    release = threading.Event()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.release.wait(30)


@pytest.fixture
def silent_loopback() -> Iterator[Target]:
    try:
        yield from _serving(_NoAnswer)
    finally:
        _NoAnswer.release.set()


def test_an_open_loop_opens_no_more_connections_to_a_server_that_never_answers(
    silent_loopback: Target,
) -> None:
    """Every connection is busy and every request waits: still one a lane (a budget of
    what was in flight opened 1,024 against such a server). A connection whose request
    timed out opens again, so it is the most held at once that is counted."""
    requests, phases = _phases(silent_loopback, "500/s")
    run = open_loop(Step("500/s", 1.0, rate_per_s=500), silent_loopback, requests, phases, 0.5)
    asyncio.run(asyncio.wait_for(run, 60))
    assert phases.measured.statuses == {NO_ANSWER: 500}
    assert phases.connections == LANES


def test_an_open_loop_keeps_a_bounded_number_of_requests_waiting(
    silent_loopback: Target,
) -> None:
    """Past ``max_waiting`` a request due is counted unanswered at once, not kept (every
    one was kept: 865 MB at 1,000,000/s for 5 s)."""
    requests, phases = _phases(silent_loopback, "5000/s")
    step = Step("5000/s", 0.5, rate_per_s=5000)
    run = open_loop(step, silent_loopback, requests, phases, 0.5, max_waiting=100)
    asyncio.run(asyncio.wait_for(run, 60))
    assert phases.measured.statuses == {NO_ANSWER: 2500}
    assert phases.most_waiting == 100


@pytest.mark.parametrize(("rate", "connections"), [(100, 1), (5000, 4)])
def test_an_open_loop_too_far_behind_gives_up_a_timeout_after_the_steps_end(
    slow_loopback: Target, rate: int, connections: int
) -> None:
    label = f"{rate}/s"
    requests, phases = _phases(slow_loopback, label)
    recorder = phases.measured
    step = Step(label, 0.5, rate_per_s=rate)
    total = rate // 2
    # Connections at 5 answers/s each cannot keep up: draining the step's requests would
    # take 10 s (100/s on one) or over 2 minutes (5000/s on four); the loop gives up 0.5 s
    # (the timeout) after the step's end, so most are never sent (without that rule all
    # are answered, the first case well within the 60 s bound). The second has thousands
    # waiting when it gives up, all let go by the connections' answer callbacks.
    run = open_loop(step, slow_loopback, requests, phases, 0.5, connections)
    asyncio.run(asyncio.wait_for(run, 60))
    recorder.flush(1.0)
    result = step_result(recorder, step.target, step.duration_s)
    assert result.requests == phases.sent == total
    assert 0 < result.errors[str(NO_ANSWER)] < total
    assert recorder.sent_late.total == total - result.errors[str(NO_ANSWER)]
    assert result.client_fell_behind
