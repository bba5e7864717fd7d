"""The load test's figures and SLO: histogram quantiles within 1 %, the timeline, the
SLO grammar and its verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from servewell.errors import InvalidInput
from servewell.loadtest.slo import judge, parse_slo
from servewell.loadtest.stats import LatencyHistogram, StepRecorder, StepResult, step_result


def test_quantiles_are_within_one_percent_and_the_maximum_exact() -> None:
    latencies = np.random.default_rng(0).lognormal(mean=-6, sigma=1, size=100_000)
    histogram = LatencyHistogram()
    histogram.add(latencies[:50_000])
    histogram.add(latencies[50_000:])
    for q in (0.5, 0.9, 0.99, 0.999):
        assert histogram.quantile_s(q) == pytest.approx(np.quantile(latencies, q), rel=0.011)
    assert histogram.max_s == latencies.max()
    assert histogram.total == 100_000
    assert LatencyHistogram().quantile_s(0.5) == 0.0


def _step(latency_s: float, statuses: list[int], invalid: tuple[int, ...] = ()) -> StepResult:
    recorder = StepRecorder("c=1", 0.0)
    for status in statuses:
        recorder.record(latency_s, status, False, "1")
    for status in invalid:
        recorder.record(latency_s, status, True, None)
    recorder.flush(2.0)
    return step_result(recorder, {"concurrency": 1}, 2.0)


def test_a_step_counts_errors_by_status_and_invalid_bodies_apart() -> None:
    step = _step(0.01, [200] * 8 + [503, 0], invalid=(400, 422, 500))
    assert step.requests == 10
    assert step.throughput_rps == 5.0
    assert step.errors == {"0": 1, "503": 1}
    assert step.error_rate == 0.2
    assert step.invalid_requests == 3
    assert step.invalid_not_4xx == 1
    assert step.versions == {"1": 10}
    assert step.timeline[0]["requests"] == 10


def test_the_slo_reads_bounds_and_judges_each_step() -> None:
    objectives = parse_slo("p99<50ms, errors<1%, p99.9<1s, max<2000000us, rps>4")
    assert [(o.metric, o.op, o.threshold) for o in objectives] == [
        ("p99", "<", 50.0),
        ("errors", "<", 0.01),
        ("p99.9", "<", 1000.0),
        ("max", "<", 2000.0),
        ("rps", ">", 4.0),
    ]
    fast, slow = _step(0.01, [200] * 10), _step(0.1, [200] * 10)
    assert all(check.passed for check in judge(objectives, [fast]))
    failed = [c.objective for c in judge(objectives, [slow]) if not c.passed]
    assert failed == ["p99<50ms"]
    bad_invalid = judge([], [_step(0.01, [200], invalid=(500,))])
    assert [c.objective for c in bad_invalid if not c.passed] == ["invalid bodies get a 4xx"]


def test_a_server_that_stops_answering_fails_whatever_the_slo() -> None:
    """Refused or dropped connections (status 0) fail a step even with no SLO given
    (the README walk: a server stopped midway, 96,311 connection errors, "PASS")."""
    unanswered = _step(0.01, [200] * 5 + [0] * 3)
    failed = [(c.objective, c.value) for c in judge([], [unanswered]) if not c.passed]
    assert failed == [("every request answered", 3)]
    answered_with_errors = _step(0.01, [200] * 5 + [503] * 3)  # answered: the SLO's to judge
    assert all(c.passed for c in judge([], [answered_with_errors]))


@pytest.mark.parametrize("text", ["p99<<1", "p98<5ms", "p99>5ms", "errors<5ms", "rps<3", "p99<5"])
def test_an_slo_that_does_not_read_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="SLO objective"):
        parse_slo(text)
