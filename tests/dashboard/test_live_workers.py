"""With ``--workers 2`` the Live figures are the whole server's, whichever worker
answers the poll: each worker's ring reads the files ``/metrics`` merges."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from serving_models import serve_process

ROW = [5.1, 3.5, 1.4, 0.2]
REQUESTS = 40
WAIT_S = 30.0

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(dashboard_keys: tuple[Path, dict[str, str]]) -> Iterator[str]:
    home, _ = dashboard_keys
    with serve_process(home, "--models", "iris", "--workers", "2") as (url, _process):
        yield url


def _answered(url: str, cookies: dict[str, str]) -> float:
    """The requests iris answered over the ring's window, as one poll (on a connection
    of its own, so either worker may answer) reports them."""
    with httpx.Client(base_url=url, cookies=cookies, timeout=30) as client:
        answer = client.get("/ui/api/live?model=iris", headers={"Connection": "close"})
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["workers"] == "all"
    return sum(p["requests"] for series in data["series"] for p in series["points"])


def test_every_worker_reports_every_workers_requests(
    visit: Any, server: str, keys: dict[str, str]
) -> None:
    visitor = visit()
    visitor.sign_in(keys["viewer"])
    cookies = {cookie["name"]: cookie["value"] for cookie in visitor.context.cookies()}
    time.sleep(5)  # both workers started, and their rings took a reading, before the traffic
    for _ in range(REQUESTS):  # a connection a request: both workers answer some
        answer = httpx.post(
            f"{server}/v1/models/iris:predict",
            json={"instances": [ROW]},
            headers={"Authorization": f"Bearer {keys['caller']}", "Connection": "close"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
    deadline = time.monotonic() + WAIT_S
    seen: list[float] = []
    while len(seen) < 8:
        total = _answered(server, cookies)
        if total >= REQUESTS or time.monotonic() > deadline:
            seen.append(total)
        time.sleep(0.1)
    assert seen == [REQUESTS] * len(seen)
