from __future__ import annotations

import json
import logging
import shutil
import subprocess

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from serving_models import InProcessClient

ROW = [5.1, 3.5, 1.4, 0.2]


def _samples(client: InProcessClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
           **labels: str) -> float:  # fmt: skip
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_requests_are_counted_by_model_version_protocol_and_status(
    client: InProcessClient,
) -> None:
    before = _samples(client)
    client.post("/v1/models/iris:predict", json={"instances": [ROW]})
    client.post("/v1/models/iris:predict", json={"instances": [[1.0]]})
    after = _samples(client)
    ok = {"model": "iris", "version": "1", "protocol": "rest", "status": "200"}
    bad = {**ok, "status": "400"}
    for labels in (ok, bad):
        delta = _value(after, "servewell_requests_total", **labels) - _value(
            before, "servewell_requests_total", **labels
        )
        assert delta == 1
    errors = _value(after, "servewell_errors_total", code="invalid_input") - _value(
        before, "servewell_errors_total", code="invalid_input"
    )
    assert errors == 1
    model = {"model": "iris", "version": "1"}
    assert _value(after, "servewell_model_load_seconds", **model) > 0
    assert _value(after, "servewell_request_duration_seconds_count", **model, protocol="rest") > 0
    assert _value(after, "servewell_model_compute_seconds_count", **model) > 0


def test_concurrent_requests_are_batched(client: InProcessClient) -> None:
    before = _samples(client)
    model = {"model": "adder", "version": "1"}

    async def burst() -> list[int]:
        async def one(http: httpx.AsyncClient, i: int) -> int:
            body = {"instances": [{"x": i, "y": 1}]}
            response = await http.post("/v1/models/adder:predict", json=body)
            assert response.json()["predictions"] == [i + 1]
            return response.status_code

        import asyncio

        return await asyncio.gather(*(one(client.client, i) for i in range(32)))

    assert client.run(burst) == [200] * 32
    after = _samples(client)
    rows = _value(after, "servewell_batch_size_rows_sum", **model) - _value(
        before, "servewell_batch_size_rows_sum", **model
    )
    batches = _value(after, "servewell_batch_size_rows_count", **model) - _value(
        before, "servewell_batch_size_rows_count", **model
    )
    assert rows == 32
    assert rows / batches > 1  # several requests per model call


def test_an_access_log_line_per_request(
    client: InProcessClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="servewell.access"):
        client.post(
            "/v1/models/iris:predict",
            json={"instances": [ROW]},
            headers={"X-Request-ID": "trace-1", "Authorization": "Bearer secret-key"},
        )
    (record,) = [r for r in caplog.records if r.name == "servewell.access"]
    fields = record.fields  # type: ignore[attr-defined]
    assert fields["request_id"] == "trace-1"
    assert fields["method"] == "POST"
    assert fields["path"] == "/v1/models/iris:predict"
    assert fields["model"] == "iris"
    assert fields["version"] == "1"
    assert fields["status"] == 200
    assert fields["batch_size"] == 1
    assert fields["latency_ms"] > 0
    line = json.dumps(fields)
    assert "secret-key" not in line
    assert "5.1" not in line


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_the_exposition_passes_promtool(client: InProcessClient) -> None:
    client.post("/v1/models/iris:predict", json={"instances": [ROW]})
    text = client.get("/metrics").text
    checked = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
