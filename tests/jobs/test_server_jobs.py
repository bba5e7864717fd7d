"""Batch jobs in a real server (uvicorn on loopback, the embedded executor): uploads
within their own limit, bad rows with the server's message, cancel, keys that see only
their own jobs, the version pinned at submission."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from job_calls import FINISHED, wait_for_job
from servewell.bootstrap import build_services
from servewell.http import create_app
from servewell.settings import (
    BatchingOverrides,
    CacheSettings,
    JobsSettings,
    ModelSettings,
    ServerSettings,
    Settings,
)
from serving_models import (
    IRIS_FEATURES,
    PYTHON_MODELS,
    create_key,
    register_iris,
    register_python,
    serve_in_thread,
)

#: The server's own body limit: job uploads go past it, within jobs.max_upload_bytes.
MAX_BODY_BYTES = 2048
MAX_UPLOAD_BYTES = 100_000


@pytest.fixture(scope="module")
def home(
    tmp_path_factory: pytest.TempPathFactory, classifier: object, iris: tuple[np.ndarray, Any]
) -> Path:
    home = tmp_path_factory.mktemp("jobs") / "home"
    services = build_services(Settings(home=home))
    try:
        register_iris(services, classifier, iris[0])
        register_python(services, "slow", "slow", artifacts=PYTHON_MODELS / "slow_artifacts")
        register_python(services, "flaky", "flaky")
        register_python(services, "always-fails", "always_fails")
    finally:
        services.close()
    return home


@pytest.fixture(scope="module")
def keys(home: Path) -> dict[str, str]:
    return {
        "alice": create_key(home, "alice", scopes=("predict",)),
        "bob": create_key(home, "bob", scopes=("predict",)),
        "iris-only": create_key(home, "iris-only", scopes=("predict",), models=("iris",)),
        "admin": create_key(home, "root", scopes=("admin",)),
    }


@pytest.fixture(scope="module")
def url(home: Path, keys: dict[str, str]) -> Iterator[str]:
    settings = Settings(
        home=home,
        cache=CacheSettings(enabled=False),
        server=ServerSettings(
            models=["iris", "slow", "flaky", "always-fails"], max_body_bytes=MAX_BODY_BYTES
        ),
        jobs=JobsSettings(chunk_rows=40, max_upload_bytes=MAX_UPLOAD_BYTES),
        models={
            "slow": ModelSettings(batching=BatchingOverrides(max_batch_size=10)),
            "flaky": ModelSettings(batching=BatchingOverrides(max_batch_size=40)),  # 1 call a chunk
        },
    )
    with serve_in_thread(create_app(settings)) as server:
        yield server.url


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _iris_csv(iris: tuple[np.ndarray, Any], bad: dict[int, str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["key", *IRIS_FEATURES])
    for index, row in enumerate(iris[0]):
        cells = [f"{value:.1f}" for value in row]
        if index in bad:
            cells[0] = bad[index]
        writer.writerow([f"k{index}", *cells])
    return out.getvalue().encode()


def _submit(
    url: str, model: str, key: str, body: bytes, name: str, **fields: str
) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/models/{model}/jobs",
        headers=_auth(key),
        files={"file": (name, body)},
        data=fields,
        timeout=30,
    )


def _wait(url: str, job_id: str, key: str, states: tuple[str, ...] = FINISHED) -> dict[str, Any]:
    return wait_for_job(url, job_id, lambda status: status["state"] in states, _auth(key))


def test_a_job_scores_every_row_and_bad_rows_get_the_servers_message(
    url: str, keys: dict[str, str], iris: tuple[np.ndarray, Any]
) -> None:
    body = _iris_csv(iris, {7: "tall", 90: ""})
    assert len(body) > MAX_BODY_BYTES  # a job upload is not held to server.max_body_bytes
    submitted = _submit(url, "iris", keys["alice"], body, "rows.csv", id_column="key")
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()
    assert submitted.headers["location"] == f"/v1/jobs/{job['id']}"
    assert (job["model"], job["version"], job["owner"]) == ("iris", 1, "alice")
    done = _wait(url, job["id"], keys["alice"])
    assert done["state"] == "succeeded", done
    assert (done["rows_done"], done["rows_total"], done["rows_failed"]) == (150, 150, 2)
    assert done["eta_s"] == 0
    results = httpx.get(
        f"{url}/v1/jobs/{job['id']}/results", headers=_auth(keys["alice"]), timeout=30
    )
    assert results.status_code == 200
    assert results.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(results.text)))
    assert [row["key"] for row in rows] == [f"k{i}" for i in range(150)]
    for index in (7, 90):
        online = httpx.post(
            f"{url}/v1/models/iris:predict",
            headers=_auth(keys["alice"]),
            json={"instances": [_row_of(body, index)]},
            timeout=30,
        )
        assert online.status_code == 400
        assert rows[index]["error"] == online.json()["error"]
        assert rows[index]["prediction"] == ""
    good = [i for i in range(150) if i not in (7, 90)]
    for start in range(0, len(good), 10):  # requests within server.max_body_bytes
        part = good[start : start + 10]
        online = httpx.post(
            f"{url}/v1/models/iris:predict",
            headers=_auth(keys["alice"]),
            json={"instances": [_row_of(body, i) for i in part]},
            timeout=30,
        ).json()
        assert [int(rows[i]["prediction"]) for i in part] == online["predictions"]
    as_jsonl = httpx.get(
        f"{url}/v1/jobs/{job['id']}/results?format=jsonl", headers=_auth(keys["alice"]), timeout=30
    )
    assert len(as_jsonl.text.splitlines()) == 150


def _row_of(body: bytes, index: int) -> dict[str, Any]:
    record = list(csv.DictReader(io.StringIO(body.decode())))[index]
    return {name: _cell(record[name]) for name in IRIS_FEATURES}


def _cell(text: str) -> Any:
    """As the job reads a CSV cell: empty is null, a number is a number."""
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return text


def test_keys_see_only_their_own_jobs(
    url: str, keys: dict[str, str], iris: tuple[np.ndarray, Any]
) -> None:
    job = _submit(url, "iris", keys["alice"], _iris_csv(iris, {}), "rows.csv").json()
    other = httpx.get(f"{url}/v1/jobs/{job['id']}", headers=_auth(keys["bob"]), timeout=30)
    assert other.status_code == 404
    assert other.json()["code"] == "job_not_found"
    cancel = httpx.delete(f"{url}/v1/jobs/{job['id']}", headers=_auth(keys["bob"]), timeout=30)
    assert cancel.status_code == 404
    listed = httpx.get(f"{url}/v1/jobs", headers=_auth(keys["bob"]), timeout=30).json()["jobs"]
    assert job["id"] not in [seen["id"] for seen in listed]
    mine = httpx.get(f"{url}/v1/jobs", headers=_auth(keys["alice"]), timeout=30).json()["jobs"]
    assert job["id"] in [seen["id"] for seen in mine]
    assert {seen["owner"] for seen in mine} == {"alice"}
    admin = httpx.get(f"{url}/v1/jobs/{job['id']}", headers=_auth(keys["admin"]), timeout=30)
    assert admin.status_code == 200
    refused = _submit(url, "slow", keys["iris-only"], b"x\n1\n", "rows.csv")
    assert refused.status_code == 403  # a job needs 'predict' on its model


def test_bad_submissions_are_4xx_and_leave_nothing(
    url: str, keys: dict[str, str], home: Path
) -> None:
    alice = keys["alice"]
    too_big = _submit(url, "slow", alice, b"x\n" + b"1\n" * MAX_UPLOAD_BYTES, "rows.csv")
    assert too_big.status_code == 413
    assert too_big.json()["code"] == "upload_too_large"
    assert "jobs.max_upload_bytes" in too_big.json()["error"]
    unknown = _submit(url, "no-such-model", alice, b"x\n1\n", "rows.csv")
    assert unknown.status_code == 404
    no_suffix = _submit(url, "slow", alice, b"x\n1\n", "rows.txt")
    assert no_suffix.status_code == 400
    assert "cannot tell the format" in no_suffix.json()["error"]
    not_parquet = _submit(url, "slow", alice, b"x\n1\n", "rows.parquet")
    assert not_parquet.status_code == 400
    assert "not a Parquet file" in not_parquet.json()["error"]
    no_id = _submit(url, "slow", alice, b"x\n1\n", "rows.csv", id_column="nope")
    assert no_id.status_code == 400
    not_multipart = httpx.post(
        f"{url}/v1/models/slow/jobs", headers=_auth(alice), content=b"x\n1\n", timeout=30
    )
    assert not_multipart.status_code == 415
    no_file = httpx.post(
        f"{url}/v1/models/slow/jobs", headers=_auth(alice), data={"id_column": "x"},
        files={"other": ("a.csv", b"x\n1\n")}, timeout=30,
    )  # fmt: skip
    assert no_file.status_code == 400
    assert "no 'file' part" in no_file.json()["error"]
    uploads = home / "artifacts" / "jobs" / "uploads"
    assert not list(uploads.glob("*"))  # every refused upload was removed


def test_cancel_stops_a_running_job_within_a_chunk(url: str, keys: dict[str, str]) -> None:
    body = b"x\n" + b"".join(f"{i}\n".encode() for i in range(400))  # 40 calls of 100 ms
    job = _submit(url, "slow", keys["alice"], body, "rows.csv").json()
    _wait(url, job["id"], keys["alice"], ("running",))
    cancelled = httpx.delete(f"{url}/v1/jobs/{job['id']}", headers=_auth(keys["alice"]), timeout=30)
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled"
    time.sleep(1.0)  # long enough for a runner that missed the cancel to finish a chunk
    later = _wait(url, job["id"], keys["alice"])
    assert later["state"] == "cancelled"
    assert later["rows_done"] < 400
    results = httpx.get(
        f"{url}/v1/jobs/{job['id']}/results", headers=_auth(keys["alice"]), timeout=30
    )
    assert results.status_code == 409


def test_the_cli_mirrors_the_job_api(
    url: str, keys: dict[str, str], iris: tuple[np.ndarray, Any], tmp_path: Path
) -> None:
    import json

    from typer.testing import CliRunner

    from servewell.cli.app import app

    runner = CliRunner()
    source = tmp_path / "rows.csv"
    source.write_bytes(_iris_csv(iris, {3: "tall"}))
    out = tmp_path / "scored.jsonl"
    common = ["--url", url, "--api-key", keys["alice"]]

    def run(*args: str) -> Any:
        return runner.invoke(app, [*args, *common], catch_exceptions=False)

    submitted = run(
        "jobs", "submit", "iris", str(source), "--id-column", "key", "--wait", "-o", str(out)
    )
    assert submitted.exit_code == 0, submitted.output
    job_id = submitted.stdout.split()[1].rstrip(":")
    rows = [json.loads(line) for line in out.read_text().splitlines()]  # CSV in, JSONL out
    assert [row["key"] for row in rows] == [f"k{i}" for i in range(150)]
    assert [row["error"] is not None for row in rows].count(True) == 1
    status = json.loads(run("jobs", "status", job_id, "--json").stdout)
    assert (status["state"], status["rows_done"], status["rows_failed"]) == ("succeeded", 150, 1)
    listed = json.loads(run("jobs", "list", "--json").stdout)
    assert job_id in [job["id"] for job in listed]
    assert run("jobs", "results", job_id, "-o", str(tmp_path / "again.csv")).exit_code == 0
    assert (tmp_path / "again.csv").read_text().startswith("key,prediction,probabilities,error")
    missing = run("jobs", "submit", "no-such-model", str(source))
    assert missing.exit_code == 4
    wrong = tmp_path / "rows.txt"
    wrong.write_text("a\n1\n")
    assert run("jobs", "submit", "iris", str(wrong)).exit_code == 2
    assert run("jobs", "status", "nope").exit_code == 4


def test_the_job_routes_are_in_the_openapi_schema(url: str) -> None:
    paths = httpx.get(f"{url}/openapi.json", timeout=30).json()["paths"]
    upload = paths["/v1/models/{name}/jobs"]["post"]["requestBody"]["content"]
    assert upload["multipart/form-data"]["schema"]["required"] == ["file"]
    assert set(paths["/v1/jobs/{job_id}"]) == {"get", "delete"}
    assert "get" in paths["/v1/jobs/{job_id}/results"]
    assert "get" in paths["/v1/jobs"]


def test_a_failed_chunk_is_tried_again_and_a_chunk_that_always_fails_fails_the_job(
    url: str, keys: dict[str, str]
) -> None:
    body = b"x\n" + b"".join(f"{i + 1}\n".encode() for i in range(200))
    flaky = _submit(url, "flaky", keys["alice"], body, "rows.csv").json()  # every 3rd call fails
    done = _wait(url, flaky["id"], keys["alice"])
    assert (done["state"], done["rows_done"], done["rows_failed"]) == ("succeeded", 200, 0)
    results = httpx.get(
        f"{url}/v1/jobs/{flaky['id']}/results?format=jsonl",
        headers=_auth(keys["alice"]),
        timeout=30,
    )
    rows = [json.loads(line) for line in results.text.splitlines()]
    assert [row["row"] for row in rows] == list(range(200))
    assert [row["prediction"] for row in rows] == [i + 1.0 for i in range(200)]
    failing = _submit(url, "always-fails", keys["alice"], body, "rows.csv").json()
    failed = _wait(url, failing["id"], keys["alice"])
    assert failed["state"] == "failed"
    assert failed["error"].startswith("chunk 0 failed 3 times; last: ")


def test_an_admin_key_may_submit_a_file_already_in_the_artifact_store(
    url: str, keys: dict[str, str], home: Path
) -> None:
    incoming = home / "artifacts" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    (incoming / "rows.csv").write_text("x\n1\n2\n")
    submission = {"path": "incoming/rows.csv"}
    refused = httpx.post(
        f"{url}/v1/models/slow/jobs", headers=_auth(keys["alice"]), json=submission, timeout=30
    )
    assert refused.status_code == 403
    job = httpx.post(
        f"{url}/v1/models/slow/jobs", headers=_auth(keys["admin"]), json=submission, timeout=30
    )
    assert job.status_code == 202, job.text
    done = _wait(url, job.json()["id"], keys["admin"])
    assert (done["state"], done["rows_done"]) == ("succeeded", 2)
    assert (incoming / "rows.csv").exists()  # the store's file stays
    outside = httpx.post(
        f"{url}/v1/models/slow/jobs",
        headers=_auth(keys["admin"]),
        json={"path": "../registry.db"},
        timeout=30,
    )
    assert outside.status_code == 400
    assert "no file '../registry.db' in the artifact store" in outside.json()["error"]
