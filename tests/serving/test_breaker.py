"""The circuit breaker's state machine on a fake clock: each way in and out of each
state, the window's rate rule and its minimum, the cooldown, the probe limit, late
outcomes of calls admitted in an earlier state, and which errors count."""

from __future__ import annotations

import asyncio

import pytest

from fake_clock import FakeClock
from servewell.errors import (
    DeadlineExceeded,
    InvalidInput,
    ModelCrashed,
    ModelFailed,
    ModelUnavailable,
    Overloaded,
    ShuttingDown,
)
from servewell.serving.breaker import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    CircuitBreaker,
    SlidingWindow,
    is_model_failure,
)
from servewell.settings.resilience import BreakerSettings

Move = tuple[str, str, str]


def _breaker(
    clock: FakeClock, moves: list[Move] | None = None, **settings: float
) -> CircuitBreaker:
    names = ("closed", "half_open", "open")

    def record(before: int, after: int, why: str) -> None:
        if moves is not None:
            moves.append((names[before], names[after], why))

    return CircuitBreaker(
        BreakerSettings(**settings),  # type: ignore[arg-type]
        "fraud",
        3,
        clock=clock,
        on_transition=record,
    )


def _fail(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        breaker.failed(breaker.admit(), "model_failed")


def _succeed(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        breaker.succeeded(breaker.admit())


def _opened(clock: FakeClock, **settings: float) -> CircuitBreaker:
    breaker = _breaker(clock, failures_to_open=2, cooldown_s=10, **settings)
    _fail(breaker, 2)
    assert breaker.state == OPEN
    return breaker


def test_consecutive_failures_open_it_and_a_success_resets_the_count() -> None:
    clock, moves = FakeClock(), []
    breaker = _breaker(clock, moves, failures_to_open=3)
    _fail(breaker, 2)
    _succeed(breaker)
    _fail(breaker, 2)
    assert breaker.state == CLOSED
    _fail(breaker)
    assert breaker.state == OPEN
    assert moves == [("closed", "open", "3 consecutive failures (last: model_failed)")]


def test_an_error_rate_opens_it_only_with_enough_calls_in_the_window() -> None:
    clock = FakeClock()
    breaker = _breaker(clock, failures_to_open=100, error_rate_to_open=0.5, min_requests=10)
    for _ in range(4):  # 8 calls, half of them failed: too few calls to judge
        _succeed(breaker)
        _fail(breaker)
    assert breaker.state == CLOSED
    _succeed(breaker)  # 9 calls, 4 failed
    _fail(breaker)  # 10 calls, 5 failed: 0.5
    assert breaker.state == OPEN
    assert breaker.why == "5 of 10 calls failed in the last 30 s"


def test_a_rate_below_the_threshold_keeps_it_closed() -> None:
    clock = FakeClock()
    breaker = _breaker(clock, failures_to_open=100, error_rate_to_open=0.5, min_requests=4)
    for _ in range(50):
        _succeed(breaker, 2)
        _fail(breaker)  # one in three
    assert breaker.state == CLOSED


def test_failures_older_than_the_window_are_forgotten() -> None:
    clock = FakeClock()
    breaker = _breaker(
        clock, failures_to_open=100, error_rate_to_open=0.5, min_requests=4, window_s=10
    )
    _fail(breaker, 3)
    clock.advance(11)  # the three failures leave the window
    _succeed(breaker, 3)
    _fail(breaker)  # 4 calls in the window, 1 failed
    assert breaker.state == CLOSED
    assert (breaker.window.calls, breaker.window.failures) == (4, 1)


def test_the_window_keeps_the_last_window_s_to_a_tenth() -> None:
    window = SlidingWindow(10.0)
    for second in range(20):  # one call a second, every other one failed
        window.add(1000.0 + second, second % 2 == 1)
    assert 9 <= window.calls <= 11
    assert window.failures in (window.calls // 2, (window.calls + 1) // 2)
    window.add(1000.0 + 19 + 25, False)  # after a long quiet spell: only this call
    assert (window.calls, window.failures) == (1, 0)


def test_open_it_refuses_with_the_cooldown_left_rounded_up() -> None:
    clock = FakeClock()
    breaker = _opened(clock)
    clock.advance(7.5)
    with pytest.raises(ModelUnavailable) as refused:
        breaker.admit()
    assert refused.value.retry_after_s == 3
    assert refused.value.message == (
        "model 'fraud' version 3 is unavailable (circuit breaker open); retry in 3 s"
    )
    assert breaker.describe() == (
        "circuit breaker open: 2 consecutive failures (last: model_failed); next probe in 3 s"
    )


def test_after_the_cooldown_probes_go_through_a_few_at_a_time() -> None:
    clock, moves = FakeClock(), []
    breaker = _breaker(clock, moves, failures_to_open=1, cooldown_s=10, half_open_probes=2)
    _fail(breaker)
    clock.advance(10)
    first, second = breaker.admit(), breaker.admit()
    assert breaker.state == HALF_OPEN
    with pytest.raises(ModelUnavailable, match="half-open") as refused:
        breaker.admit()  # both probe slots are taken
    assert refused.value.retry_after_s == 1
    breaker.succeeded(first)
    assert breaker.state == HALF_OPEN  # one success of the two needed
    third = breaker.admit()  # the slot the first probe freed
    breaker.succeeded(second)
    assert breaker.state == CLOSED
    assert moves[1:] == [
        ("open", "half_open", "cooldown of 10 s over"),
        ("half_open", "closed", "2 probes succeeded"),
    ]
    breaker.failed(third, "model_failed")  # a probe of the half-open breaker: ignored now
    assert breaker.state == CLOSED
    assert breaker.window.calls == 0


def test_a_failed_probe_opens_it_again_for_a_whole_cooldown() -> None:
    clock, moves = FakeClock(), []
    breaker = _breaker(clock, moves, failures_to_open=1, cooldown_s=10, half_open_probes=3)
    _fail(breaker)
    clock.advance(12)
    probe, other = breaker.admit(), breaker.admit()
    breaker.failed(probe, "deadline_exceeded")
    assert breaker.state == OPEN
    assert moves[-1] == ("half_open", "open", "a probe failed (deadline_exceeded)")
    breaker.succeeded(other)  # a probe of the breaker before it reopened: ignored
    assert breaker.state == OPEN
    clock.advance(9.9)
    with pytest.raises(ModelUnavailable):
        breaker.admit()
    clock.advance(0.1)
    breaker.admit()
    assert breaker.state == HALF_OPEN


def test_a_probe_without_a_verdict_frees_its_slot() -> None:
    clock = FakeClock()
    breaker = _breaker(clock, failures_to_open=1, cooldown_s=1, half_open_probes=1)
    _fail(breaker)
    clock.advance(1)
    probe = breaker.admit()
    breaker.settle(probe, InvalidInput("the caller's mistake"))
    breaker.settle(breaker.admit(), asyncio.CancelledError())
    breaker.succeeded(breaker.admit())
    assert breaker.state == CLOSED


def test_late_outcomes_of_calls_admitted_while_closed_are_ignored() -> None:
    clock = FakeClock()
    breaker = _breaker(clock, failures_to_open=2, cooldown_s=1, half_open_probes=1)
    in_flight = [breaker.admit() for _ in range(4)]
    breaker.failed(in_flight[0], "model_failed")
    breaker.failed(in_flight[1], "model_failed")
    assert breaker.state == OPEN
    clock.advance(1)
    probe = breaker.admit()
    breaker.succeeded(in_flight[2])  # not a probe: cannot close it
    breaker.failed(in_flight[3], "model_failed")  # nor reopen it
    assert breaker.state == HALF_OPEN
    breaker.succeeded(probe)
    assert breaker.state == CLOSED


def test_a_closed_breaker_starts_afresh() -> None:
    clock = FakeClock()
    breaker = _breaker(clock, failures_to_open=3, cooldown_s=1, half_open_probes=1)
    _fail(breaker, 3)
    clock.advance(1)
    _succeed(breaker)
    assert breaker.state == CLOSED
    _fail(breaker, 2)  # the failures before it opened do not count any more
    assert breaker.state == CLOSED


@pytest.mark.parametrize(
    ("error", "counts"),
    [
        (ModelFailed("predict raised"), True),
        (ModelCrashed("fraud", 3, "SIGSEGV"), True),
        (DeadlineExceeded("fraud", 200), True),
        (RuntimeError("unexpected"), True),
        (InvalidInput("bad row"), False),
        (Overloaded("fraud"), False),
        (ShuttingDown(), False),
        (ModelUnavailable("fraud", 3, "circuit breaker open"), False),
        (asyncio.CancelledError(), False),
    ],
)
def test_only_the_models_failures_count(error: BaseException, counts: bool) -> None:
    assert is_model_failure(error) is counts
    breaker = _breaker(FakeClock(), failures_to_open=1)
    breaker.settle(breaker.admit(), error)
    assert breaker.state == (OPEN if counts else CLOSED)
