"""Calls to a server's job routes for the job tests: a job's status, and waiting (with a
deadline, polling) until it is in a state a test names."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

Status = dict[str, Any]
FINISHED = ("succeeded", "failed", "cancelled")


def job_status(url: str, job_id: str, headers: dict[str, str] | None = None) -> Status:
    answer = httpx.get(f"{url}/v1/jobs/{job_id}", headers=headers, timeout=30)
    return answer.json()  # type: ignore[no-any-return]


def wait_for_job(
    url: str,
    job_id: str,
    done: Callable[[Status], bool] = lambda status: status["state"] in FINISHED,
    headers: dict[str, str] | None = None,
    timeout_s: float = 120,
) -> Status:
    """The job's status once ``done`` holds for it; AssertionError past the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = job_status(url, job_id, headers)
        if done(status):
            return status
        assert time.monotonic() < deadline, f"job {job_id} is still {status}"
        time.sleep(0.05)
