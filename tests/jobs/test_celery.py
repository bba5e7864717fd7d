"""Batch jobs on real Celery workers (``servewell worker`` processes) over the real
Redis (a database of its own, 11) and PostgreSQL: a worker killed with SIGKILL mid-job,
then a new worker finishes it, every row exactly once."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from job_calls import job_status, wait_for_job
from servewell.bootstrap import build_services
from servewell.http import create_app
from servewell.settings import AuthSettings, JobsSettings, ServerSettings, Settings
from serving_models import PYTHON_MODELS, register_python, serve_in_thread

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ROWS = 300
#: This test's own Redis database: no other test uses it.
REDIS_DB = 11


@pytest.fixture
def broker(redis_url: str) -> str:
    import redis

    url = redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def home(tmp_path: Path, postgres_url: str) -> Path:
    home = tmp_path / "home"
    services = build_services(Settings(home=home, database_url=postgres_url))
    try:
        register_python(services, "slow", "slow", artifacts=PYTHON_MODELS / "slow_artifacts")
    finally:
        services.close()
    (tmp_path / "servewell.yaml").write_text("models: {slow: {batching: {max_batch_size: 10}}}\n")
    (tmp_path / "unpacked").mkdir()
    return home


@contextlib.contextmanager
def worker(home: Path, postgres_url: str, broker: str) -> Iterator[subprocess.Popen[str]]:
    env = {
        **os.environ,
        "SERVEWELL_HOME": str(home),
        "SERVEWELL_DATABASE_URL": postgres_url,
        "SERVEWELL_REDIS_URL": broker,
        "SERVEWELL_JOBS__EXECUTOR": "celery",
        "TMPDIR": str(home.parent / "unpacked"),
    }
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "servewell"), "worker"],
        cwd=home.parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def test_a_new_worker_finishes_the_job_of_a_killed_one_with_every_row_once(
    home: Path, postgres_url: str, broker: str
) -> None:
    settings = Settings(
        home=home,
        database_url=postgres_url,
        redis_url=broker,
        auth=AuthSettings(enabled=False),
        server=ServerSettings(models=["slow"]),
        jobs=JobsSettings(executor="celery", chunk_rows=20),
    )
    body = "id,x\n" + "".join(f"r{i},{i}\n" for i in range(ROWS))
    with serve_in_thread(create_app(settings)) as server:
        url = server.url
        job_id = httpx.post(
            f"{url}/v1/models/slow/jobs",
            files={"file": ("rows.csv", body)},
            data={"id_column": "id"},
            timeout=30,
        ).json()["id"]
        assert job_status(url, job_id)["state"] == "queued"  # no worker yet: the task waits
        with worker(home, postgres_url, broker) as first:
            wait_for_job(url, job_id, lambda status: status["rows_done"] >= 60)
            os.killpg(first.pid, signal.SIGKILL)  # mid-job
        left = job_status(url, job_id)
        assert left["state"] == "running"
        assert left["rows_done"] < ROWS
        with worker(home, postgres_url, broker):
            finished = wait_for_job(url, job_id)
        assert finished["state"] == "succeeded", finished
        assert finished["rows_done"] == ROWS  # no chunk counted twice
        results = httpx.get(f"{url}/v1/jobs/{job_id}/results", timeout=30).text
    rows = list(csv.DictReader(io.StringIO(results)))
    assert [row["id"] for row in rows] == [f"r{i}" for i in range(ROWS)]  # each once, in order
    assert all(float(row["prediction"]) == float(row["id"][1:]) for row in rows)
