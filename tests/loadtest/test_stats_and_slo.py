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
    assert step.throughput_rps == 4.5  # answered, any status: the one never answered is none
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
    failed = [c.objective for c in bad_invalid if not c.passed]
    assert failed == ["invalid bodies without a 4xx: none"]


def test_a_check_shows_its_value_in_the_objectives_unit() -> None:
    """``errors<0.1%`` beside a bare fraction (0.53) read as 0.53 %: it is 53 %."""
    step = _step(0.01, [200] * 47 + [503] * 53)
    checks = judge(parse_slo("errors<0.1%, p50<1ms, rps>100"), [step])
    p50 = f"{checks[1].value:.4g} ms"  # the histogram's bucket edge near 10 ms
    assert [c.to_dict()["shown"] for c in checks] == ["53%", p50, "50/s", "0"]
    assert [c.passed for c in checks] == [False, False, False, True]


def test_a_server_that_stops_answering_fails_whatever_the_slo() -> None:
    """Refused or dropped connections (status 0) fail a step even with no SLO given
    (the README walk: a server stopped midway, 96,311 connection errors, "PASS")."""
    unanswered = _step(0.01, [200] * 5 + [0] * 3)
    failed = [(c.objective, c.value) for c in judge([], [unanswered]) if not c.passed]
    assert failed == [("unanswered requests: none", 3)]
    answered_with_errors = _step(0.01, [200] * 5 + [503] * 3)  # answered: the SLO's to judge
    assert all(c.passed for c in judge([], [answered_with_errors]))


@pytest.mark.parametrize("text", ["p99<<1", "p98<5ms", "p99>5ms", "errors<5ms", "rps<3", "p99<5"])
def test_an_slo_that_does_not_read_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="SLO objective"):
        parse_slo(text)


def test_each_open_loop_request_is_no_slower_from_its_send_than_from_its_due_time() -> None:
    for latency_s, late_s in [(0.010, 0.0), (0.010, 0.004), (0.5, 0.49), (2e-6, 1e-6)]:
        recorder = StepRecorder("100/s", 0.0)
        recorder.record(latency_s, 200, False, "1", late_s)
        recorder.flush(1.0)
        assert recorder.from_send.max_s == pytest.approx(latency_s - late_s)
        assert recorder.from_send.max_s <= recorder.histogram.max_s
        assert recorder.sent_late.max_s == late_s >= 0


def test_open_loop_figures_count_the_valid_answers_and_a_closed_loop_has_none() -> None:
    recorder = StepRecorder("100/s", 0.0)
    for k in range(100):
        recorder.record(0.020, 200 if k % 10 else 503, False, "1", 0.001 * (k % 5))
    recorder.record(0.020, 400, True, None, 0.001)  # an invalid body: in no histogram
    recorder.flush(1.0)
    assert recorder.from_send.total == recorder.sent_late.total == recorder.histogram.total == 100
    step = step_result(recorder, {"rate_per_s": 100.0}, 1.0)
    assert step.sent_late_ms is not None
    assert step.latency_from_send_ms is not None
    assert step.sent_late_ms["max"] == pytest.approx(4.0)
    assert step.latency_from_send_ms["p50"] <= step.latency_ms["p50"]
    assert step.to_dict()["client_fell_behind"] is False
    closed = _step(0.01, [200] * 3).to_dict()
    assert closed["sent_late_ms"] is None
    assert closed["latency_from_send_ms"] is None
    assert closed["client_fell_behind"] is None


def _sent_late(from_send_s: float, late_s: float, late_share: float = 1.0) -> StepResult:
    """A step of 100 answers taking ``from_send_s`` from their actual send, the last
    ``late_share`` of them sent ``late_s`` late (in their corrected latency), the others
    on time."""
    recorder = StepRecorder("100/s", 0.0)
    for k in range(100):
        late = late_s if k >= 100 * (1 - late_share) else 0.0
        recorder.record(from_send_s + late, 200, False, "1", late)
    recorder.flush(1.0)
    return step_result(recorder, {"rate_per_s": 100.0}, 1.0)


def test_the_client_fell_behind_when_its_lateness_p99_passes_10ms_and_the_p50() -> None:
    assert _sent_late(0.005, 0.002).client_fell_behind is False  # a few ms: the design
    assert _sent_late(0.001, 0.008, 0.02).client_fell_behind is False  # 8 ms: under 10
    assert _sent_late(0.2, 0.05).client_fell_behind is False  # under a slow server's p50
    assert _sent_late(0.005, 0.030).client_fell_behind  # always 30 ms late, 5 ms answers
    assert _sent_late(0.005, 0.030, 0.02).client_fell_behind  # the slowest 2 %: the p99
    assert _sent_late(0.005, 0.030, 0.005).client_fell_behind is False  # beyond the p99
