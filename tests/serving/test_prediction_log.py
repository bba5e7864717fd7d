"""The log's flush on a real registry: each flush consumer is handed the rows the store
took, and one that raises neither loses the batch nor stops the others; a record that
cannot be encoded is counted and its request's neighbours logged."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from servewell.bootstrap import Services, build_prediction_log, build_services
from servewell.core.inference import InferRequest, InferResponse
from servewell.core.ref import ModelRef
from servewell.core.signature import Signature, TensorSpec
from servewell.observability import RequestRecord, ServingMetrics
from servewell.registry.predictions import PredictionRow, SqlPredictionStore
from servewell.serving.prediction_rows import Answer, Logged
from servewell.settings import MonitoringSettings, Settings

pytestmark = pytest.mark.anyio

NUMERIC = Signature(
    inputs=(TensorSpec(name="x", datatype="FP32", shape=(-1, -1)),),
    outputs=(TensorSpec(name="y", datatype="FP32", shape=(-1, -1)),),
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    built = build_services(settings)
    yield built
    built.close()


def answer(outputs: object) -> Answer:
    request = InferRequest(ModelRef.parse("num"), {"x": [[1.0, 2.0]]})
    return Answer(NUMERIC, request, InferResponse("num", 1, {"y": outputs}))  # type: ignore[dict-item]


def record(request_id: str) -> RequestRecord:
    return RequestRecord(request_id, "POST", "/", model="num", version="1", caller="team-a")


async def test_consumers_get_each_batch_and_one_that_fails_stops_nothing(
    services: Services,
) -> None:
    metrics = ServingMetrics(CollectorRegistry())
    log = build_prediction_log(services.settings, services, metrics)
    seen: list[list[PredictionRow]] = []

    def broken(rows: list[PredictionRow], records: list[Logged]) -> None:
        raise RuntimeError("a consumer's own bug")

    def consume(rows: list[PredictionRow], records: list[Logged]) -> None:
        assert [record.request_id for record in records] == [row.request_id for row in rows]
        seen.append(rows)

    log.consumers.extend([broken, consume])
    log.add(record("a"), 0.001, answer(np.ones((1, 1), np.float32)))
    log.add(record("bad"), 0.001, answer(np.array([object()])))  # cannot be encoded
    log.add(record("b"), 0.001, None)  # a cache hit
    assert await log.flush() == 2
    await log.close()
    assert [[row.request_id for row in rows] for rows in seen] == [["a", "b"]]
    assert [row.request_id for row in SqlPredictionStore(services.registry).rows("num")] == [
        "a",
        "b",
    ]
    dropped = metrics.registry.get_sample_value(
        "servewell_predlog_dropped_total", {"reason": "write_failed"}
    )
    assert dropped == 1


async def test_past_half_the_buffer_records_keep_no_arrays(services: Services) -> None:
    """A buffer that fills (writes stalled) holds records of JSON alone, as before they
    kept arrays for the sketches; those are read back from the rows."""
    settings = services.settings.model_copy(
        update={"monitoring": MonitoringSettings(buffer_size=4)}
    )
    log = build_prediction_log(settings, services, ServingMetrics(CollectorRegistry()))
    for n in range(5):
        log.add(record(f"r{n}"), 0.001, answer(np.ones((1, 1), np.float32)))
    assert [logged.output_arrays is not None for logged in log.buffer] == [
        True,
        True,
        False,
        False,
    ]
    assert log.dropped == 1
    assert await log.flush() == 4
    await log.close()
    assert len(SqlPredictionStore(services.registry).rows("num")) == 4
