"""The live view on a terminal: a row per step with the last second's figures."""

from __future__ import annotations

import io

from rich.console import Console

from servewell.cli.loadtest_view import LiveView
from servewell.loadtest.stats import StepRecorder


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
