"""The prediction log on a real server: what is logged, sampled, hashed, dropped, and
written at shutdown; ground truth sent back by request id (SQLite and PostgreSQL)."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from servewell.bootstrap import Services, build_services
from servewell.http import create_app
from servewell.registry.keys import ApiKeyStore
from servewell.registry.prediction_store import open_prediction_store
from servewell.registry.predictions import LoggedPrediction, PredictionRow, SqlPredictionStore
from servewell.settings import (
    AuthSettings,
    CacheSettings,
    MonitoringSettings,
    ServerSettings,
    Settings,
)
from serving_models import (
    ECHO_VALUES,
    build_adder_home,
    register_adder,
    register_echo,
    serve_in_thread,
    serve_process,
)

#: How long a test waits for rows to be written (the flusher runs every 0.05 s here).
WAIT_S = 30.0


@pytest.fixture
def services(settings: Settings, tmp_path: Path) -> Iterator[Services]:
    """A registry (SQLite and PostgreSQL) holding the adder and echo."""
    services = build_services(settings)
    register_adder(services, tmp_path)
    register_echo(services, tmp_path)
    yield services
    services.close()


def serving_settings(services: Services, **overrides: Any) -> Settings:
    fields: dict[str, Any] = {
        "home": services.settings.home,
        "database_url": services.settings.database_url,
        "auth": AuthSettings(enabled=False),
        "cache": CacheSettings(enabled=False),
        "server": ServerSettings(models=["adder", "echo"]),
        "monitoring": {"flush_interval_s": 0.05},
    }
    fields.update(overrides)
    return Settings(**fields)


def add(url: str, x: float, request_id: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = {"x-request-id": request_id} if request_id else {}
    headers.update(kwargs.pop("headers", {}))
    body = {"instances": [{"x": [x], "y": [1.0]}]}
    return httpx.post(
        f"{url}/v1/models/adder:predict", json=body, headers=headers, timeout=30, **kwargs
    )


def echo_body(request_id: str) -> dict[str, Any]:
    inputs = [
        {"name": f"in_{datatype}", "datatype": datatype, "shape": [1, 2], "data": values}
        for datatype, values in ECHO_VALUES.items()
    ]
    return {"id": request_id, "inputs": inputs, "outputs": [{"name": "out_FP32"}]}


def wait_for_rows(services: Services, model: str, count: int) -> list[LoggedPrediction]:
    store = SqlPredictionStore(services.registry)
    deadline = time.monotonic() + WAIT_S
    while True:
        rows = store.rows(model)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_served_predictions_are_logged_with_outputs_inputs_and_ids(services: Services) -> None:
    with serve_in_thread(create_app(serving_settings(services), services)) as server:
        assert add(server.url, 2.0, "req-a").status_code == 200
        answer = httpx.post(f"{server.url}/v2/models/echo/infer", json=echo_body("v2-id"))
        assert answer.status_code == 200, answer.text
        adder = wait_for_rows(services, "adder", 1)
        echo = wait_for_rows(services, "echo", 1)
    [row] = adder
    assert (row.request_id, row.model, row.version, row.arm, row.cached) == (
        "req-a",
        "adder",
        1,
        None,
        False,
    )
    assert row.outputs == {"sum": [[3.0]]}
    assert row.inputs == {"x": [[2.0]], "y": [[1.0]]}  # numbers: full by default
    assert row.latency_ms > 0
    [logged] = echo
    assert logged.request_id == "v2-id"  # the V2 body's id
    assert logged.outputs == {"out_FP32": [ECHO_VALUES["FP32"]]}
    texts = logged.inputs["in_BYTES"]  # text: hashed by default
    assert len(texts[0]) == 2
    assert all(len(h) == 32 for h in texts[0])
    assert texts[0][0] != texts[0][1]
    assert "héllo" not in str(logged.inputs)
    assert logged.inputs["in_INT32"] == [ECHO_VALUES["INT32"]]


def test_log_inputs_hash_and_none(services: Services) -> None:
    models = {
        "adder": {"monitoring": {"log_inputs": "hash"}},
        "echo": {"monitoring": {"log_inputs": "none"}},
    }
    settings = serving_settings(services, models=models)
    with serve_in_thread(create_app(settings, services)) as server:
        assert add(server.url, 2.0, "one").status_code == 200
        assert add(server.url, 2.0, "two").status_code == 200
        assert httpx.post(f"{server.url}/v2/models/echo/infer", json=echo_body("e")).is_success
        adder = wait_for_rows(services, "adder", 2)
        [echo] = wait_for_rows(services, "echo", 1)
    first, second = adder
    assert first.inputs == second.inputs  # equal values, equal hashes
    assert first.inputs["x"] != first.inputs["y"]
    assert len(first.inputs["x"][0][0]) == 32
    assert first.outputs == {"sum": [[3.0]]}  # outputs are kept whatever log_inputs says
    assert echo.inputs is None
    assert echo.outputs is not None


def test_sample_rate_zero_logs_nothing(services: Services) -> None:
    models = {"adder": {"monitoring": {"sample_rate": 0}}}
    settings = serving_settings(services, models=models)
    with serve_in_thread(create_app(settings, services)) as server:
        for n in range(20):
            assert add(server.url, float(n)).status_code == 200
        assert httpx.post(f"{server.url}/v2/models/echo/infer", json=echo_body("e")).is_success
        assert len(wait_for_rows(services, "echo", 1)) == 1  # the flusher has run since
    assert SqlPredictionStore(services.registry).rows("adder") == []


def test_cache_hits_are_logged_as_cached_and_errors_are_not(services: Services) -> None:
    settings = serving_settings(services, cache=CacheSettings(enabled=True))
    with serve_in_thread(create_app(settings, services)) as server:
        assert add(server.url, 5.0, "miss").headers["x-cache"] == "miss"
        assert add(server.url, 5.0, "hit").headers["x-cache"] == "hit"
        bad = httpx.post(f"{server.url}/v1/models/adder:predict", json={"instances": [{}]})
        assert bad.status_code == 400
        rows = wait_for_rows(services, "adder", 2)
    assert [(row.request_id, row.cached) for row in rows] == [("miss", False), ("hit", True)]
    assert rows[1].outputs is None
    assert rows[1].inputs is None


def test_a_full_buffer_drops_and_counts_without_failing_requests(services: Services) -> None:
    metrics = CollectorRegistry()
    monitoring = {"buffer_size": 3, "flush_interval_s": 3600}  # written only at shutdown
    settings = serving_settings(services, monitoring=monitoring)
    app = create_app(settings, services, registry=metrics)
    with serve_in_thread(app) as server:
        statuses = [add(server.url, float(n), f"r{n}").status_code for n in range(40)]
    assert statuses == [200] * 40
    rows = SqlPredictionStore(services.registry).rows("adder")
    assert [row.request_id for row in rows] == ["r0", "r1", "r2"]
    dropped = metrics.get_sample_value("servewell_predlog_dropped_total", {"reason": "full"})
    assert dropped == 37
    assert metrics.get_sample_value("servewell_predlog_written_total") == 3


def test_feedback_is_joined_by_request_id_idempotent_and_reports_unknown_ids(
    services: Services,
) -> None:
    with serve_in_thread(create_app(serving_settings(services), services)) as server:
        for n in range(3):
            assert add(server.url, float(n), f"id-{n}").status_code == 200
        wait_for_rows(services, "adder", 3)
        url = f"{server.url}/v1/models/adder/feedback"
        labels = [{"request_id": "id-0", "label": "yes"}, {"request_id": "id-1", "label": 0}]
        unknown = [{"request_id": f"nobody-{n}", "label": 1} for n in range(150)]
        first = httpx.post(url, json=labels + unknown).json()
        again = httpx.post(url, json=[{"request_id": "id-1", "label": 1}]).json()
    assert first["accepted"] == 2
    assert first["unknown_count"] == 150
    assert first["unknown"] == [f"nobody-{n}" for n in range(100)]
    assert again == {"accepted": 1, "unknown": [], "unknown_count": 0}
    rows = SqlPredictionStore(services.registry).rows("adder")
    assert [(row.request_id, row.label) for row in rows] == [
        ("id-0", "yes"),
        ("id-1", 1),  # the second label replaced the first
        ("id-2", None),
    ]
    assert rows[0].labeled_at is not None
    assert rows[2].labeled_at is None


def test_the_parquet_store_logs_joins_labels_and_writes_its_files_at_shutdown(
    services: Services,
) -> None:
    monitoring = {"flush_interval_s": 0.05, "store": "parquet", "parquet_file_age_s": 3600}
    settings = serving_settings(services, monitoring=monitoring)
    with serve_in_thread(create_app(settings, services)) as server:
        for n in range(3):
            assert add(server.url, float(n), f"pq-{n}").status_code == 200
        url = f"{server.url}/v1/models/adder/feedback"
        labels = [{"request_id": "pq-0", "label": 1}, {"request_id": "pq-2", "label": 0}]
        deadline = time.monotonic() + WAIT_S
        while True:  # the rows reach the store's held file at the next flush
            result = httpx.post(url, json=labels, timeout=30).json()
            if result["accepted"] == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert result["accepted"] == 2
    rows = open_prediction_store(services, settings.monitoring).rows("adder")
    assert [(row.request_id, row.label) for row in rows] == [
        ("pq-0", 1),
        ("pq-1", None),
        ("pq-2", 0),
    ]
    assert rows[1].outputs == {"sum": [[2.0]]}
    assert SqlPredictionStore(services.registry).rows("adder") == []  # none in the table


def test_feedback_for_a_model_the_registry_does_not_know_is_a_404(services: Services) -> None:
    """A misspelt model name is an error, not a batch of unknown ids."""
    with serve_in_thread(create_app(serving_settings(services), services)) as server:
        answer = httpx.post(
            f"{server.url}/v1/models/addr/feedback", json=[{"request_id": "a", "label": 1}]
        )
    assert answer.status_code == 404, answer.text
    assert answer.json()["code"] == "model_not_found"


def test_a_v2_id_too_long_to_label_is_logged_under_the_request_id(services: Services) -> None:
    """Feedback names at most 128 characters: a longer V2 ``id`` is not cut to 128 (a label
    could then never name it, or name another's); the row keeps the request's own id."""
    long_id = "x" * 200
    with serve_in_thread(create_app(serving_settings(services), services)) as server:
        tensors = [
            {"name": name, "shape": [1, 1], "datatype": "FP32", "data": [1.0]} for name in "xy"
        ]
        body = {"id": long_id, "inputs": tensors}
        answer = httpx.post(
            f"{server.url}/v2/models/adder/infer", json=body, headers={"X-Request-ID": "mine"}
        )
        assert answer.status_code == 200, answer.text
        rows = wait_for_rows(services, "adder", 1)
    assert [row.request_id for row in rows] == ["mine"]


BAD_BODIES = [
    (b"not json", "not valid JSON"),
    (b'{"request_id": "a", "label": 1}', "JSON list"),
    (b'[{"request_id": "a"}]', "item 0 has no 'label'"),
    (b'[{"request_id": "a", "label": 1}, 3]', "item 1 is not an object"),
    (b'[{"request_id": "", "label": 1}]', "'request_id' must be text"),
    (b'[{"request_id": "a", "label": null}]', "not null"),
    (b'[{"request_id": "a", "label": [1]}]', "not list"),
    (b'[{"request_id": "a", "label": 1, "extra": 2}]', "unknown field(s): extra"),
]


def test_bad_feedback_bodies_are_400_naming_what_is_wrong(services: Services) -> None:
    with serve_in_thread(create_app(serving_settings(services), services)) as server:
        answers = [
            httpx.post(
                f"{server.url}/v1/models/adder/feedback",
                content=body,
                headers={"content-type": "application/json"},
            )
            for body, _ in BAD_BODIES
        ]
        wrong_type = httpx.post(
            f"{server.url}/v1/models/adder/feedback",
            content=b"[]",
            headers={"content-type": "text/csv"},
        )
    for answer, (body, says) in zip(answers, BAD_BODIES, strict=True):
        assert answer.status_code == 400, (body, answer.text)
        assert says in answer.json()["error"], (body, answer.text)
    assert wrong_type.status_code == 415


def test_feedback_over_the_body_limit_is_413(services: Services) -> None:
    settings = serving_settings(
        services, server=ServerSettings(models=["adder"], max_body_bytes=1000)
    )
    with serve_in_thread(create_app(settings, services)) as server:
        labels = [{"request_id": f"id-{n}", "label": n} for n in range(200)]
        answer = httpx.post(f"{server.url}/v1/models/adder/feedback", json=labels)
    assert answer.status_code == 413


def test_feedback_needs_the_feedback_scope(services: Services) -> None:
    keys = ApiKeyStore(services.registry)
    predict = keys.create("predictor", scopes=("predict",))[1]
    labeller = keys.create("labeller", scopes=("feedback",))[1]
    settings = serving_settings(services, auth=AuthSettings(enabled=True))
    with serve_in_thread(create_app(settings, services)) as server:
        as_predictor = {"authorization": f"Bearer {predict}"}
        assert add(server.url, 1.0, "k1", headers=as_predictor).status_code == 200
        wait_for_rows(services, "adder", 1)
        url = f"{server.url}/v1/models/adder/feedback"
        labels = [{"request_id": "k1", "label": 1}]
        refused = httpx.post(url, json=labels, headers=as_predictor)
        anonymous = httpx.post(url, json=labels)
        accepted = httpx.post(url, json=labels, headers={"authorization": f"Bearer {labeller}"})
        cannot_predict = add(server.url, 1.0, headers={"authorization": f"Bearer {labeller}"})
    assert refused.status_code == 403
    assert "feedback" in refused.json()["error"]
    assert anonymous.status_code == 401
    assert accepted.status_code == 200
    assert accepted.json()["accepted"] == 1
    assert cannot_predict.status_code == 403
    [row] = SqlPredictionStore(services.registry).rows("adder")
    assert row.key_name == "predictor"
    assert row.label == 1


@pytest.mark.parametrize("store", ["database", "parquet"])
def test_sigterm_writes_what_the_buffer_holds(tmp_path: Path, store: str) -> None:
    """A real ``servewell serve`` process that would not flush for an hour: SIGTERM
    writes every answered prediction before it exits (to a Parquet file too, which
    would otherwise wait for a file's worth of rows)."""
    home = build_adder_home(tmp_path / "home")
    env = {"SERVEWELL_MONITORING__FLUSH_INTERVAL_S": "3600", "SERVEWELL_MONITORING__STORE": store}
    with serve_process(home, "--no-auth", "--models", "adder", env=env) as (url, process):
        for n in range(25):
            assert add(url, float(n), f"term-{n}").status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    services = build_services(Settings(home=home, monitoring=MonitoringSettings(store=store)))
    try:
        rows = open_prediction_store(services).rows("adder")
    finally:
        services.close()
    assert [row.request_id for row in rows] == [f"term-{n}" for n in range(25)]


def test_rows_past_retention_are_pruned_while_serving(services: Services) -> None:
    store = SqlPredictionStore(services.registry)
    now = time.time()
    old, recent = now - 40 * 86400, now - 86400
    store.write(
        [
            PredictionRow(old, "old", "adder", 1, None, None, 1.0, False, None, None),
            PredictionRow(recent, "recent", "adder", 1, None, None, 1.0, False, None, None),
        ]
    )
    monitoring = {"flush_interval_s": 0.05, "retention_days": 30}
    settings = serving_settings(services, monitoring=monitoring)
    with serve_in_thread(create_app(settings, services)):
        deadline = time.monotonic() + WAIT_S
        while len(store.rows("adder")) > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [row.request_id for row in store.rows("adder")] == ["recent"]


def _dropped(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "servewell_predlog_dropped"
        for sample in family.samples
        if sample.name.endswith("_total")
    )


def test_a_v2_id_holding_nul_is_logged_without_losing_its_batch(services: Services) -> None:
    app = create_app(serving_settings(services, monitoring={"flush_interval_s": 0.5}), services)
    with serve_in_thread(app) as server:
        for n in range(5):
            assert add(server.url, float(n), f"good-{n}").status_code == 200
        odd = httpx.post(
            f"{server.url}/v2/models/echo/infer", json=echo_body("bad\x00id"), timeout=30
        )
        assert odd.status_code == 200, odd.text
        adder = wait_for_rows(services, "adder", 5)
        echo = wait_for_rows(services, "echo", 1)
        dropped = _dropped(server.url)
    assert sorted(row.request_id for row in adder) == [f"good-{n}" for n in range(5)]
    assert [row.request_id for row in echo] == ["bad\ufffdid"]
    assert dropped == 0


def test_feedback_naming_an_id_with_nul_is_400(services: Services) -> None:
    with serve_in_thread(create_app(serving_settings(services), services)) as server:
        answer = httpx.post(
            f"{server.url}/v1/models/adder/feedback",
            content=b'[{"request_id": "a\\u0000b", "label": 1}]',
            headers={"content-type": "application/json"},
            timeout=30,
        )
    assert answer.status_code == 400, answer.text
    assert "NUL" in answer.json()["error"]
