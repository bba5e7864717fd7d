"""The load-test page of a document: open-loop steps show their p50 from the actual
sends and how late they were sent, closed-loop steps a dash, a late client a warning."""

from __future__ import annotations

from datetime import UTC, datetime

from servewell.loadtest.report import RunContext, to_document
from servewell.loadtest.run import LoadTestResult, Plan
from servewell.loadtest.schedule import Step
from servewell.loadtest.slo import judge
from servewell.loadtest.stats import StepRecorder, StepResult, step_result
from servewell.reports.loadtest_page import loadtest_html


def _step(step: Step, from_send_s: float, late_s: float | None) -> StepResult:
    recorder = StepRecorder(step.label, 0.0)
    for _ in range(10):
        recorder.record(from_send_s + (late_s or 0.0), 200, False, "1", late_s)
    recorder.flush(1.0)
    return step_result(recorder, step.target, 1.0)


def _page(*steps: tuple[Step, float, float | None]) -> str:
    results = [_step(*step) for step in steps]
    result = LoadTestResult(datetime.now(UTC), 2.0, results, judge([], results), sent=20)
    context = RunContext("http://127.0.0.1:8000", "m", "rest", "file", 1, 0.0)
    plan = Plan([step for step, _, _ in steps])
    return loadtest_html(to_document(result, plan, context, 1))


def test_open_loop_steps_show_their_lateness_and_a_late_client_is_warned_of() -> None:
    closed = (Step("c=1", 1.0, concurrency=1), 0.002, None)
    page = _page(closed, (Step("100/s", 1.0, rate_per_s=100), 0.003, 0.001))
    assert "<th>p50 from send ms</th><th>sent late p50/p99 ms</th>" in page
    assert "<td class='num'>3.00</td><td class='num'>1.00/1.00</td>" in page
    assert "<td class='num muted'>-</td>" in page
    assert "itself was late" not in page
    late = _page((Step("900/s", 1.0, rate_per_s=900), 0.002, 0.040))
    assert "the load generator itself was late in 900/s" in late
