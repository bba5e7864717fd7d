"""The dashboard's data for Monitoring, Jobs and Load tests and doctor, read from a real
server and its registry by the functions the pages call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

import monitored_models as monitored
from servewell.bootstrap import Services, build_services
from servewell.http import create_app
from servewell.http.dashboard.checks_data import DoctorRuns, latest_load_tests
from servewell.http.dashboard.job_rows import job_rows
from servewell.http.dashboard.monitoring_data import monitoring_data
from servewell.http.running import RunningServer
from servewell.jobs.service import Viewer
from servewell.registry.loadtests import LoadTestStore
from servewell.settings import (
    AuthSettings,
    BatchingOverrides,
    CacheSettings,
    JobsSettings,
    ModelSettings,
    ServerSettings,
    Settings,
)
from serving_models import PYTHON_MODELS, register_python, serve_in_thread


def _run(coroutine: Any) -> Any:
    """``asyncio.run`` on a thread of its own (a browser test's event loop may be running
    on this one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=120)


FULL = {monitored.MODEL: {"monitoring": {"log_inputs": "full"}}}
EVERYONE = Viewer(None, sees_all=True)


@pytest.fixture
def trained(tmp_path: Path, database_url: str) -> Iterator[Services]:
    services = build_services(
        Settings(home=tmp_path / "home", database_url=database_url, models=FULL)
    )
    monitored.train(services)
    yield services
    services.close()


def test_monitoring_shows_drift_rows_and_says_what_is_missing(trained: Services) -> None:
    with monitored.serving(trained, models=FULL) as url:
        monitored.predict(url, monitored.loans(300, seed=2, shift=0.8), "many", batch=50)
        monitored.wait_for_rows(trained, 300)
    data = monitoring_data(trained)
    assert data.model == monitored.MODEL
    assert data.models == [monitored.MODEL]
    assert data.report is not None
    (group,) = data.report["groups"]
    drift = {feature["name"]: feature for feature in group["drift"]["features"]}
    assert drift["amount"]["drift"] is True
    assert {test["test"] for test in drift["amount"]["tests"]} == {"psi", "ks", "wasserstein"}
    assert group["quality"] is None
    assert "no labels" in group["quality_note"]
    assert f"POST /v1/models/{monitored.MODEL}/feedback" in group["quality_note"]
    assert data.alerts.rules == []


def test_monitoring_refuses_a_bad_window_and_an_unknown_model(trained: Services) -> None:
    from servewell.errors import InvalidInput, NotFound

    with pytest.raises(InvalidInput):
        monitoring_data(trained, window="yesterday")
    with pytest.raises(NotFound):
        monitoring_data(trained, model="no-such-model")


@pytest.fixture
def slow_server(tmp_path: Path) -> Iterator[tuple[str, RunningServer]]:
    home = tmp_path / "home"
    services = build_services(Settings(home=home))
    try:
        register_python(services, "slow", "slow", artifacts=PYTHON_MODELS / "slow_artifacts")
    finally:
        services.close()
    settings = Settings(
        home=home,
        auth=AuthSettings(enabled=False),
        cache=CacheSettings(enabled=False),
        server=ServerSettings(models=["slow"]),
        jobs=JobsSettings(chunk_rows=5),
        models={"slow": ModelSettings(batching=BatchingOverrides(max_batch_size=5))},
    )
    app = create_app(settings)
    with serve_in_thread(app) as server:
        yield server.url, app.running


def test_a_jobs_progress_advances_and_cancel_stops_it(
    slow_server: tuple[str, RunningServer],
) -> None:
    url, running = slow_server
    rows = b"x\n" + b"1.0\n" * 400  # 100 ms a call of 5 rows: 8 s in all
    answer = httpx.post(
        f"{url}/v1/models/slow/jobs", files={"file": ("rows.csv", rows)}, timeout=30
    )
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["id"]
    seen: list[float] = []
    deadline = time.monotonic() + 60
    while len({p for p in seen if p > 0}) < 2:
        assert time.monotonic() < deadline, f"no progress: {seen}"
        (row,) = job_rows(running, EVERYONE)
        if row.progress is not None:
            seen.append(row.progress)
        time.sleep(0.1)
    assert row.cancellable
    assert row.status["rows_per_s"] is not None
    assert row.results is None
    running.jobs.cancel(job_id, EVERYONE)
    (row,) = job_rows(running, EVERYONE)
    assert row.status["state"] == "cancelled"
    assert not row.cancellable
    assert job_rows(running, Viewer("someone-else", sees_all=False)) == []


def test_load_tests_are_the_newest_per_version_and_doctor_runs_bounded(
    slow_server: tuple[str, RunningServer],
) -> None:
    url, running = slow_server
    assert latest_load_tests(running.services) == []
    store = LoadTestStore(running.services.registry)
    store.record("slow", 1, passed=False, slo="p99<1ms", summary={"steps": []})
    store.record("slow", 1, passed=True, slo="p99<1s", summary={"steps": []})
    (latest,) = latest_load_tests(running.services)
    assert latest.passed
    assert latest.slo == "p99<1s"

    runs = DoctorRuns()
    report = _run(runs.run(running, url))
    assert report.error is None
    items = {finding.item for finding in report.findings}
    assert {"versioning", "health checks", "metrics"} <= items
    health = [f for f in report.findings if f.item == "health checks"]
    assert [str(f.status) for f in health] == ["pass"]  # it asked the server itself
    assert report.counts["pass"] > 0
    assert runs.last is report

    async def give_up_then_wait() -> tuple[Any, Any]:
        impatient = DoctorRuns(timeout_s=0.0)
        first = await impatient.run(running, url)
        impatient.timeout_s = 60.0
        return first, await impatient.run(running, url)  # waits for the same thread

    timed_out, finished = _run(give_up_then_wait())
    assert timed_out.findings == []
    assert "longer than" in (timed_out.error or "")
    assert finished.error is None
    assert finished.findings
