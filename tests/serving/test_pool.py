"""The model pool, deployments and predictor on real ONNX models, without HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from servewell.bootstrap import build_services
from servewell.core.inference import InferRequest
from servewell.core.ref import ModelRef
from servewell.core.validation import InputLimits
from servewell.errors import InvalidInput, NotFound, NotReady
from servewell.observability import ServingMetrics
from servewell.serving.pool import ModelPool
from servewell.serving.predictor import Predictor
from servewell.settings import (
    BatchingOverrides,
    BatchingSettings,
    ModelSettings,
    ServerSettings,
    Settings,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


SETOSA = [5.1, 3.5, 1.4, 0.2]


def _settings(home: Path, *models: str, **options: object) -> Settings:
    return Settings(home=home, server=ServerSettings(models=list(models)), **options)  # type: ignore[arg-type]


async def test_without_references_every_model_serves_its_production_alias(
    model_home: Path,
) -> None:
    services = build_services(_settings(model_home))
    pool = ModelPool(services, [], ServingMetrics(CollectorRegistry()))
    with pytest.raises(NotReady):
        pool.get("iris")
    await pool.load()
    try:
        assert pool.is_ready
        assert {(d.name, d.number) for d in pool.deployments()} == {
            ("adder", 1), ("echo", 1), ("iris", 1),
        }  # fmt: skip
        with pytest.raises(NotFound, match="served versions: 1"):
            pool.get("iris", 2)
        with pytest.raises(NotFound, match="served models: adder, echo, iris"):
            pool.get("nope")
    finally:
        await pool.close()
        services.close()


async def test_a_model_that_cannot_load_keeps_the_pool_unready(model_home: Path) -> None:
    services = build_services(_settings(model_home))
    pool = ModelPool(
        services,
        [ModelRef.parse("iris"), ModelRef.parse("ghost")],
        ServingMetrics(CollectorRegistry()),
    )
    await pool.load()
    try:
        assert not pool.is_ready
        assert "ghost" in pool.failures
        assert pool.get("iris").number == 1
        with pytest.raises(NotReady):
            pool.get("ghost")
    finally:
        await pool.close()
        services.close()


async def test_concurrent_requests_run_as_one_batch_and_split_back(model_home: Path) -> None:
    settings = _settings(
        model_home,
        "iris",
        models={"iris": ModelSettings(batching=BatchingOverrides(max_batch_size=8))},
    )
    services = build_services(settings)
    pool = ModelPool(services, [ModelRef("iris")], ServingMetrics(CollectorRegistry()))
    await pool.load()
    predictor = Predictor(pool, InputLimits())
    rows = [SETOSA, [6.9, 3.1, 5.4, 2.1], [5.9, 3.0, 4.2, 1.5]]
    try:
        requests = [
            InferRequest(ModelRef("iris"), {"input": [rows[i % 3]] * (1 + i % 2)}) for i in range(6)
        ]
        responses = await asyncio.gather(*(predictor.infer(r) for r in requests))
        alone = await predictor.infer(InferRequest(ModelRef("iris"), {"input": rows}))
    finally:
        await pool.close()
        services.close()
    assert [r.batch_size for r in responses] == [7, 7, 7, 7, 7, 2]  # 8 rows at most
    for i, response in enumerate(responses):
        expected = alone.outputs["label"][i % 3]
        assert response.outputs["label"].tolist() == [expected] * (1 + i % 2)
        np.testing.assert_allclose(
            response.outputs["probabilities"][0], alone.outputs["probabilities"][i % 3], rtol=1e-6
        )


async def test_the_predictor_validates_before_queueing(model_home: Path) -> None:
    services = build_services(_settings(model_home, "iris"))
    pool = ModelPool(services, [ModelRef("iris")], ServingMetrics(CollectorRegistry()))
    await pool.load()
    predictor = Predictor(pool, InputLimits(max_rows=2))
    try:
        with pytest.raises(InvalidInput, match="at most 2 per request"):
            await predictor.infer(InferRequest(ModelRef("iris"), {"input": [SETOSA] * 3}))
        with pytest.raises(InvalidInput, match="unknown output 'colour'"):
            await predictor.infer(
                InferRequest(ModelRef("iris"), {"input": [SETOSA]}, outputs=("colour",))
            )
        with pytest.raises(NotFound, match="not the alias"):
            predictor.resolve(ModelRef.parse("iris@production"))
    finally:
        await pool.close()
        services.close()


def test_a_models_own_max_batch_size_caps_the_settings() -> None:
    settings = BatchingSettings(max_batch_size=16, max_queue_size=9)
    assert settings.capped(None) == settings
    assert settings.capped(32) == settings
    assert settings.capped(4) == settings.model_copy(update={"max_batch_size": 4})


def test_per_model_batching_overrides_the_defaults() -> None:
    settings = Settings(
        models={"big": ModelSettings(batching=BatchingOverrides(max_batch_size=4))},
        server=ServerSettings(batching=BatchingSettings(max_queue_size=9)),
    )
    assert settings.model("big").batching.max_batch_size == 4
    assert settings.model("big").batching.max_queue_size == 9
    assert settings.model("other").batching == settings.server.batching
