"""An alert rule's states: one bad sample pages no one, one good sample resets nothing."""

from __future__ import annotations

import math

import pytest

from fake_clock import FakeClock
from servewell.core.alerting import AlertState, AlertTracker
from servewell.settings.monitoring import AlertRule

EVERY_S = 10.0  # the evaluation interval: clear_for defaults to two of them


def _tracker(for_: str = "10m", op: str = "<", clock: FakeClock | None = None) -> AlertTracker:
    rule = AlertRule.model_validate(
        {"name": "acc-drop", "model": "fraud", "metric": "accuracy", "op": op,
         "threshold": 0.9, "window": "1h", "for": for_, "action": "rollback"}
    )  # fmt: skip
    return AlertTracker(rule, clear_for_s=2 * EVERY_S, clock=clock or FakeClock(0.0))


def _run(tracker: AlertTracker, values: list[float | None], start: float = 0.0) -> list[tuple]:
    """Feed one value per evaluation interval; (time, kind) of every event."""
    events = []
    for i, value in enumerate(values):
        events += [(e.at, e.kind) for e in tracker.observe(value, now=start + i * EVERY_S)]
    return events


BAD, GOOD = 0.8, 0.95


def test_one_bad_sample_pages_no_one() -> None:
    tracker = _tracker()
    events = _run(tracker, [GOOD, BAD] + [GOOD] * 100)
    assert events == [(10.0, "pending"), (30.0, "cleared")]
    assert tracker.state is AlertState.INACTIVE


def test_a_sustained_problem_fires_once_at_for() -> None:
    tracker = _tracker()
    events = _run(tracker, [BAD] * 200)
    assert events == [(0.0, "pending"), (600.0, "firing")]
    assert tracker.state is AlertState.FIRING


def test_one_good_sample_in_between_does_not_reset_a_real_problem() -> None:
    tracker = _tracker()
    events = _run(tracker, [BAD] * 31 + [GOOD] + [BAD] * 40)
    assert events == [(0.0, "pending"), (600.0, "firing")]  # not 320 + 600


def test_a_real_recovery_resets_pending() -> None:
    tracker = _tracker()
    events = _run(tracker, [BAD] * 31 + [GOOD, GOOD] + [BAD] * 80)
    assert events == [(0.0, "pending"), (320.0, "cleared"), (330.0, "pending"), (930.0, "firing")]


def test_a_good_sample_never_fires_it() -> None:
    tracker = _tracker()
    events = _run(tracker, [BAD] * 60 + [GOOD] + [BAD])
    assert events == [(0.0, "pending"), (610.0, "firing")]  # not at 600, a good sample


def test_a_firing_alert_resolves_after_clear_for_of_good_samples_once() -> None:
    tracker = _tracker()
    events = _run(tracker, [BAD] * 61 + [GOOD] + [BAD] + [GOOD] * 10)
    assert events == [(0.0, "pending"), (600.0, "firing"), (640.0, "resolved")]
    assert tracker.state is AlertState.RESOLVED
    assert tracker.observe(BAD, now=1000.0)[0].kind == "pending"  # a new episode


def test_missing_data_neither_advances_nor_resolves() -> None:
    tracker = _tracker()
    assert _run(tracker, [BAD] * 61 + [None] * 500) == [(0.0, "pending"), (600.0, "firing")]
    assert tracker.state is AlertState.FIRING
    assert tracker.observe(GOOD, now=10_000.0)[0].kind == "resolved"


def test_missing_data_clears_a_pending_rule_after_clear_for() -> None:
    tracker = _tracker()
    events = _run(tracker, [BAD] + [None] * 8640 + [BAD] * 10)
    assert events == [(0.0, "pending"), (20.0, "cleared"), (86_410.0, "pending")]
    assert tracker.since == 86_410.0  # two bad samples a day apart are not sustained


def test_one_missing_sample_in_between_does_not_reset_either() -> None:
    tracker = _tracker()
    assert _run(tracker, [BAD] * 31 + [None] + [BAD] * 40) == [(0.0, "pending"), (600.0, "firing")]


def test_for_zero_fires_at_the_first_bad_sample() -> None:
    tracker = _tracker(for_="0s")
    assert _run(tracker, [BAD, GOOD, GOOD]) == [
        (0.0, "pending"),
        (0.0, "firing"),
        (20.0, "resolved"),
    ]


def test_flapping_around_the_threshold_is_a_sustained_problem() -> None:
    tracker = _tracker()
    events = _run(tracker, [BAD, GOOD] * 40)
    assert events == [(0.0, "pending"), (600.0, "firing")]


@pytest.mark.parametrize(
    ("op", "bad", "good"),
    [("<", 0.8, 0.9), ("<=", 0.9, 0.91), (">", 0.91, 0.9), (">=", 0.9, 0.89), ("==", 0.9, 0.8),
     ("!=", 0.8, 0.9)],
)  # fmt: skip
def test_each_operator(op: str, bad: float, good: float) -> None:
    tracker = _tracker(for_="0", op=op)
    assert tracker.is_bad(bad) is True
    assert tracker.is_bad(good) is False
    assert tracker.is_bad(math.nan) is None
    assert tracker.is_bad(None) is None


def test_the_clock_is_read_when_no_time_is_given_and_held_when_it_steps_back() -> None:
    clock = FakeClock(100.0)
    tracker = _tracker(clock=clock)
    [pending] = tracker.observe(BAD)
    assert (pending.at, pending.since) == (100.0, 100.0)
    for _ in range(60):
        clock.advance(EVERY_S)
        events = tracker.observe(BAD)
    [firing] = events
    assert firing.at == 700.0
    assert firing.to_dict() == {
        "rule": "acc-drop", "model": "fraud", "metric": "accuracy", "kind": "firing",
        "at": 700.0, "since": 100.0, "value": BAD, "threshold": 0.9, "op": "<",
        "severity": "page", "action": "rollback",
    }  # fmt: skip
    clock.advance(-500)  # a wall clock stepped back
    assert tracker.observe(GOOD) == []
    assert tracker._latest == 700.0  # held


def test_end_closes_the_episode_at_once() -> None:
    tracker = _tracker(for_="0s")
    assert tracker.end(now=0.0) is None  # no episode
    _run(tracker, [BAD])
    ended = tracker.end(now=5.0)  # within clear_for: only end() does this
    assert ended is not None
    assert (ended.kind, ended.at, ended.since, ended.value) == ("resolved", 5.0, 0.0, None)
    assert tracker.state is AlertState.RESOLVED
    assert [e.kind for e in tracker.observe(BAD, now=6.0)] == ["pending", "firing"]
    pending = _tracker(for_="10m")
    _run(pending, [BAD])
    assert pending.end(now=3.0).kind == "cleared"  # type: ignore[union-attr]
    assert pending.state is AlertState.INACTIVE
