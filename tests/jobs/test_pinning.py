"""A job pins the version its model's name resolved to at submission: the alias moving
mid-job changes what online requests get, not the job's rows."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import httpx
import pytest

from job_calls import job_status, wait_for_job
from servewell.bootstrap import build_services
from servewell.http import create_app
from servewell.settings import (
    AuthSettings,
    BatchingOverrides,
    CacheSettings,
    JobsSettings,
    ModelSettings,
    ServerSettings,
    Settings,
)
from serving_models import register_python, serve_in_thread

pytestmark = pytest.mark.slow

ROWS = 100


def test_moving_the_alias_mid_job_does_not_mix_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Version 1 (the gated model: y = x) holds the job's last row, -1, until the test
    opens its gate, after the alias has moved to version 2 (y = -x) and online requests
    get version 2's answers: the job cannot end before, however busy the machine."""
    home = tmp_path / "home"
    gates = tmp_path / "gates"
    gates.mkdir()
    monkeypatch.setenv("GATED_MODEL_DIR", str(gates))
    services = build_services(Settings(home=home))
    try:
        register_python(services, "pinned", "gated")
        register_python(services, "pinned", "negate")
        services.registry.set_alias("pinned", "production", 1)
        settings = Settings(
            home=home,
            auth=AuthSettings(enabled=False),
            cache=CacheSettings(enabled=False),
            server=ServerSettings(models=["pinned"]),
            jobs=JobsSettings(chunk_rows=20),
            models={"pinned": ModelSettings(batching=BatchingOverrides(max_batch_size=10))},
        )
        with serve_in_thread(create_app(settings)) as server:
            url = server.url
            body = "x\n" + "".join(f"{i + 1}\n" for i in range(ROWS)) + "-1\n"
            job = httpx.post(
                f"{url}/v1/models/pinned/jobs", files={"file": ("rows.csv", body)}, timeout=30
            ).json()
            assert job["version"] == 1
            services.registry.set_alias("pinned", "production", 2)
            _until_online_is_negative(url)  # online requests now go to version 2 ...
            assert job_status(url, job["id"])["state"] == "running"  # ... while the job runs
            (gates / "open-1").touch()
            assert wait_for_job(url, job["id"])["state"] == "succeeded"
            results = httpx.get(f"{url}/v1/jobs/{job['id']}/results", timeout=30).text
    finally:
        services.close()
    rows = list(csv.DictReader(io.StringIO(results)))
    expected = [i + 1.0 for i in range(ROWS)] + [-1.0]  # every row by version 1
    assert [float(row["prediction"]) for row in rows] == expected


def _online(url: str) -> float:
    """What an online request gets; +inf while version 1 still answers them and its
    queue waits behind the job's gated row (that request is given up)."""
    try:
        answer = httpx.post(f"{url}/v1/models/pinned:predict", json={"instances": [5]}, timeout=2)
    except httpx.TimeoutException:
        return float("inf")
    return float(answer.json()["predictions"][0])


def _until_online_is_negative(url: str) -> None:
    deadline = time.monotonic() + 60
    while _online(url) >= 0:
        assert time.monotonic() < deadline, "the server never followed the alias"
        time.sleep(0.05)
