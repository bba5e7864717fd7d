"""A server killed with SIGKILL in the middle of a job: the next server up resumes it
from its last finished chunk, and the result has every input row exactly once."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx
import pytest

from job_calls import job_status, wait_for_job
from servewell.bootstrap import build_services
from servewell.settings import Settings
from serving_models import PYTHON_MODELS, register_python, serve_process

pytestmark = pytest.mark.slow

ROWS = 300


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    services = build_services(Settings(home=home))
    try:
        register_python(services, "slow", "slow", artifacts=PYTHON_MODELS / "slow_artifacts")
    finally:
        services.close()
    # 20-row chunks of two 10-row calls of 100 ms each: about 0.2 s a chunk.
    (tmp_path / "servewell.yaml").write_text(
        "jobs: {chunk_rows: 20}\nmodels: {slow: {batching: {max_batch_size: 10}}}\n"
    )
    (tmp_path / "unpacked").mkdir()
    return home


def test_a_job_survives_kill_9_of_its_server_with_every_row_once(home: Path) -> None:
    env = {"TMPDIR": str(home.parent / "unpacked")}
    body = "id,x\n" + "".join(f"r{i},{i}\n" for i in range(ROWS))
    with serve_process(home, "--no-auth", "--models", "slow", env=env) as (url, _):
        submitted = httpx.post(
            f"{url}/v1/models/slow/jobs",
            files={"file": ("rows.csv", body.encode())},
            data={"id_column": "id"},
            timeout=30,
        )
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["id"]
        wait_for_job(url, job_id, lambda status: status["rows_done"] >= 60)
    # The block's end killed the server's process group with SIGKILL, mid-job.
    with serve_process(home, "--no-auth", "--models", "slow", env=env) as (url, _):
        left = job_status(url, job_id)
        assert left["state"] == "running"
        assert 60 <= left["rows_done"] < ROWS
        finished = wait_for_job(url, job_id)
        assert finished["state"] == "succeeded", finished
        assert finished["rows_done"] == ROWS  # no chunk counted twice
        results = httpx.get(f"{url}/v1/jobs/{job_id}/results", timeout=30)
    rows = list(csv.DictReader(io.StringIO(results.text)))
    assert [row["id"] for row in rows] == [f"r{i}" for i in range(ROWS)]  # each once, in order
    assert all(float(row["prediction"]) == float(row["id"][1:]) for row in rows)
    assert all(row["error"] == "" for row in rows)
