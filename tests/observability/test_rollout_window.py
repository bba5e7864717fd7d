"""A process's own per-arm counts as a rollout reads them (tallied, or straight on
prometheus_client's objects as with --workers N), and the verdict on two windows."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from servewell.core.rollout import Bounds, Window
from servewell.observability import ServingMetrics
from servewell.observability.metrics import ARM_REQUESTS, ARM_S
from servewell.observability.rollout_window import Outcome, judge, own_windows, p99_s


@pytest.mark.parametrize("direct", [False, True])
def test_own_windows_per_version(direct: bool) -> None:
    metrics = ServingMetrics(CollectorRegistry(), direct=direct)
    for status, seconds in ((200, 0.003), (200, 0.003), (500, 0.2), (404, 0.001)):
        metrics.observe_arm("fraud", "canary", "3", status, seconds)
    metrics.observe_arm("fraud", "2", "2", 200, 0.003)
    metrics.observe_arm("other", "2", "2", 200, 0.003)
    windows = own_windows(metrics.own_families(ARM_REQUESTS, ARM_S), "fraud")
    assert sorted(windows) == [2, 3]
    three = windows[3]
    assert (three.requests, three.errors, sum(three.buckets)) == (4, 1, 4)
    assert windows[2].requests == 1
    p99 = p99_s(three)
    assert p99 is not None
    assert 0.1 < p99 <= 0.25


def test_judge() -> None:
    fast = Window(100, 0, (100,))  # every answer in the first bucket (0.5 ms)
    bounds = Bounds(max_error_rate=0.01, max_p99_ratio=1.5, min_requests=50)
    assert judge((1, fast), (2, fast), bounds).outcome is Outcome.PROCEED
    assert judge((1, fast), (2, Window(10, 0, (10,))), bounds).outcome is Outcome.WAIT
    failing = judge((1, fast), (2, Window(100, 2, (100,))), bounds)
    assert (failing.outcome, failing.bound) == (Outcome.ABORT, "error_rate")
    slow = judge((1, fast), (2, Window(100, 0, (0,) * 9 + (100,))), bounds)  # 0.25-0.5 s
    assert (slow.outcome, slow.bound) == (Outcome.ABORT, "p99")
