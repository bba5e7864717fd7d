"""The breaker and retries inside Deployment.predict, on a real Python model in a real
pool, without HTTP: every attempt counts in the breaker, an open breaker stops the
retries, and a disabled breaker never opens."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from servewell.bootstrap import build_services
from servewell.core.inference import InferRequest
from servewell.core.ref import ModelRef
from servewell.core.validation import InputLimits
from servewell.errors import ModelFailed, ModelUnavailable
from servewell.observability import ServingMetrics
from servewell.serving.breaker import CLOSED, OPEN
from servewell.serving.pool import ModelPool
from servewell.serving.predictor import Predictor
from servewell.settings import ServerSettings, Settings
from serving_models import register_python

pytestmark = pytest.mark.anyio

ONE_ROW = InferRequest(ModelRef("recovering"), {"x": [1.0]})


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def flag(tmp_path: Path) -> Path:
    """While this file exists, the model fails."""
    return tmp_path / "failing"


@pytest.fixture
def home(tmp_path: Path, flag: Path) -> Path:
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    (artifacts / "config.json").write_text(json.dumps({"flag": str(flag)}))
    home = tmp_path / "home"
    services = build_services(Settings(home=home))
    try:
        register_python(services, "recovering", "fails_while", artifacts=artifacts)
    finally:
        services.close()
    return home


@pytest.fixture
async def serve(home: Path) -> AsyncIterator[Any]:
    opened: list[ModelPool] = []

    async def open_with(**model: Any) -> tuple[Predictor, ModelPool, CollectorRegistry]:
        settings = Settings(
            home=home,
            server=ServerSettings(models=["recovering"]),
            models={"recovering": model},  # type: ignore[dict-item]
        )
        services = build_services(settings)
        registry = CollectorRegistry()
        pool = ModelPool(services, [ModelRef("recovering")], ServingMetrics(registry))
        await pool.load()
        opened.append(pool)
        return Predictor(pool, InputLimits()), pool, registry

    yield open_with
    for pool in opened:
        await pool.close()


def _retries(registry: CollectorRegistry) -> float | None:
    labels = {"model": "recovering", "version": "1"}
    return registry.get_sample_value("servewell_retries_total", labels)


async def test_each_attempt_counts_and_an_open_breaker_ends_the_retries(
    serve: Any, flag: Path
) -> None:
    predictor, pool, registry = await serve(
        retries=3, breaker={"failures_to_open": 2, "cooldown_s": 60}
    )
    deployment = pool.get("recovering")
    flag.touch()
    with pytest.raises(ModelUnavailable, match="circuit breaker open"):
        await predictor.infer(ONE_ROW)  # two failed attempts open it; the third is refused
    assert deployment.breaker is not None
    assert deployment.breaker.state == OPEN
    assert _retries(registry) == 2
    flag.unlink()
    with pytest.raises(ModelUnavailable):  # refused without calling the model, not retried
        await predictor.infer(ONE_ROW)
    assert _retries(registry) == 2


async def test_without_retries_a_failure_is_the_answer(serve: Any, flag: Path) -> None:
    predictor, pool, registry = await serve(breaker={"failures_to_open": 2})
    flag.touch()
    with pytest.raises(ModelFailed):
        await predictor.infer(ONE_ROW)
    assert pool.get("recovering").breaker.state == CLOSED  # type: ignore[union-attr]
    flag.unlink()
    response = await predictor.infer(ONE_ROW)
    assert response.outputs["y"].tolist() == [1.0]
    assert _retries(registry) == 0


async def test_a_disabled_breaker_never_opens(serve: Any, flag: Path) -> None:
    predictor, pool, _ = await serve(breaker={"enabled": False, "failures_to_open": 1})
    assert pool.get("recovering").breaker is None
    flag.touch()
    for _ in range(3):
        with pytest.raises(ModelFailed):
            await predictor.infer(ONE_ROW)
