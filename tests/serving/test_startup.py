"""A server process that fails at start-up: one log line with the reason, uvicorn's
start-up failure status, and the reason handed to ``servewell serve`` through the report.
(A real ``servewell serve`` whose workers fail is in ``tests/e2e/test_serve.py``.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import uvicorn.config

from servewell.errors import InvalidConfig, StartupFailed
from servewell.serving.startup import (
    REPORT_VARIABLE,
    STARTUP_FAILURE,
    record_startup_failure,
    reporting_startup_failure,
)


def test_the_status_is_the_one_uvicorn_s_supervisor_stops_on() -> None:
    assert STARTUP_FAILURE == uvicorn.config.STARTUP_FAILURE


def test_an_app_factory_that_fails_logs_one_line_reports_and_exits(tmp_path: Path) -> None:
    report = tmp_path / "report.txt"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from servewell.http.app import create_app_from_environment\n"
            "create_app_from_environment()",
        ],
        env={
            **os.environ,
            "SERVEWELL_HOME": str(tmp_path / "home"),
            "SERVEWELL_SERVER__NO_SUCH_SETTING": "1",
            REPORT_VARIABLE: str(report),
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == STARTUP_FAILURE  # it used to die with a traceback (status 1)
    assert result.stderr == ""
    (line,) = [json.loads(text) for text in result.stdout.splitlines()]
    reason = "unknown setting SERVEWELL_SERVER__NO_SUCH_SETTING in the environment"
    assert line["level"] == "error"
    assert line["message"].startswith(f"the server failed to start: {reason}")
    assert "exception" not in line  # servewell's own error says it all
    assert report.read_text().startswith(reason)


def _one_process_failing() -> None:
    """As uvicorn with one process: the lifespan records, then uvicorn exits."""
    with reporting_startup_failure():
        record_startup_failure(InvalidConfig("the first\nproblem"))
        record_startup_failure(RuntimeError("a second one"))
        raise SystemExit(STARTUP_FAILURE)


def test_the_first_reason_recorded_becomes_the_command_s_error() -> None:
    with pytest.raises(StartupFailed) as raised:
        _one_process_failing()
    assert raised.value.reason == "the first problem"
    assert raised.value.exit_code == 9
    assert REPORT_VARIABLE not in os.environ


def _supervisor_returning_after_a_worker_failed() -> None:
    with reporting_startup_failure():
        Path(os.environ[REPORT_VARIABLE]).write_text("RuntimeError: no registry\n")


def test_a_failure_reported_by_a_worker_fails_a_run_that_returned() -> None:
    with pytest.raises(StartupFailed, match=r"RuntimeError: no registry"):
        _supervisor_returning_after_a_worker_failed()


def _drained_server(reports: list[Path]) -> None:
    with reporting_startup_failure():
        reports.append(Path(os.environ[REPORT_VARIABLE]))
        raise SystemExit(0)


def test_a_run_without_failure_keeps_its_own_exit() -> None:
    reports: list[Path] = []
    with pytest.raises(SystemExit) as raised:
        _drained_server(reports)
    assert raised.value.code == 0
    assert not reports[0].exists()
    with reporting_startup_failure():
        pass
