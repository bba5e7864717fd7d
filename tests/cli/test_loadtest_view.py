"""The live view on a terminal: a row per step with the last second's figures; the
open-loop lines after the run."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from rich.console import Console

from servewell.cli.loadtest_view import LiveView, open_loop_lines
from servewell.loadtest.run import LoadTestResult
from servewell.loadtest.slo import judge
from servewell.loadtest.stats import StepRecorder, StepResult, step_result


def test_the_live_view_shows_rate_latency_and_errors_by_status() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    recorder = StepRecorder("c=16", 0.0)
    for status in (200, 200, 503):
        recorder.record(0.004, status, False, "1")
    recorder.record(0.004, 500, True, None)
    with LiveView(console) as view:
        view.tick("c=16", recorder.flush(1.0), recorder)
    shown = out.getvalue()
    assert "c=16" in shown
    assert "503: 1" in shown
    assert "invalid not 4xx: 1" in shown


def _step(label: str, target: dict[str, float], from_send_s: float, late_s: float) -> StepResult:
    recorder = StepRecorder(label, 0.0)
    for _ in range(10):
        open_loop = "rate_per_s" in target
        recorder.record(from_send_s + late_s, 200, False, "1", late_s if open_loop else None)
    recorder.flush(1.0)
    return step_result(recorder, target, 1.0)


def test_open_loop_steps_show_how_late_they_were_sent_and_a_late_client_is_warned_of() -> None:
    steps = [
        _step("c=4", {"concurrency": 4}, 0.002, 0.0),
        _step("100/s", {"rate_per_s": 100}, 0.002, 0.001),
        _step("900/s", {"rate_per_s": 900}, 0.002, 0.040),
    ]
    result = LoadTestResult(datetime.now(UTC), 3.0, steps, judge([], steps), sent=30)
    lines = open_loop_lines(result)
    assert [line.split(":")[0] for line in lines] == [
        "100/s",
        "900/s",
        "[bold yellow]warning[/] 900/s",
    ]
    assert "sent late p50/p99 1.00/1.00 ms, p50 from send 2.00 ms" in lines[0]
    assert "load generator itself was late" in lines[2]
