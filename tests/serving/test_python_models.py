"""Python models in the pool and the predictor, without HTTP: batches capped by the
signature's max_batch_size (and by the settings), never on the event loop, and a model
whose load raises keeps the pool unready with the reason."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from servewell.bootstrap import Services, build_services
from servewell.core.inference import InferRequest
from servewell.core.ref import ModelRef
from servewell.core.validation import InputLimits
from servewell.errors import InvalidInput, ModelFailed
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
from serving_models import PYTHON_MODELS, register_python

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A registry holding ``sum`` whose signature allows at most 4 rows a call."""
    home = tmp_path / "home"
    signature = json.loads((PYTHON_MODELS / "sum.json").read_text()) | {"max_batch_size": 4}
    (tmp_path / "sum-4.json").write_text(json.dumps(signature))
    services = build_services(Settings(home=home))
    try:
        register_python(services, "sum", "sum", signature=tmp_path / "sum-4.json")
    finally:
        services.close()
    return home


async def _open(
    home: Path, batching: BatchingSettings | None = None, **settings: object
) -> tuple[Services, ModelPool, Predictor]:
    server = ServerSettings(models=["sum"], batching=batching or BatchingSettings())
    services = build_services(Settings(home=home, server=server, **settings))  # type: ignore[arg-type]
    pool = ModelPool(services, [ModelRef("sum")], ServingMetrics(CollectorRegistry()))
    await pool.load()
    return services, pool, Predictor(pool, InputLimits())


async def _rows_in_each_call(predictor: Predictor, requests: int) -> list[int]:
    one_row = InferRequest(ModelRef("sum"), {"x": [1.0], "y": [2.0]})
    responses = await asyncio.gather(*(predictor.infer(one_row) for _ in range(requests)))
    for response in responses:
        assert response.outputs["sum"].tolist() == [3.0]
    return [int(response.outputs["rows_in_call"][0]) for response in responses]


async def test_batches_hold_no_more_rows_than_the_signature_allows(home: Path) -> None:
    services, pool, predictor = await _open(home)  # settings allow 64 rows a call
    try:
        assert await _rows_in_each_call(predictor, 10) == [4] * 8 + [2] * 2
        with pytest.raises(InvalidInput, match="input 'x' has 5 rows; at most 4 per request"):
            await predictor.infer(InferRequest(ModelRef("sum"), {"x": [1.0] * 5, "y": [1.0] * 5}))
    finally:
        await pool.close()
        services.close()


async def test_settings_may_batch_fewer_rows_than_the_signature(home: Path) -> None:
    fewer = {"sum": ModelSettings(batching=BatchingOverrides(max_batch_size=3))}
    services, pool, predictor = await _open(home, models=fewer)
    try:
        assert await _rows_in_each_call(predictor, 7) == [3] * 6 + [1]
    finally:
        await pool.close()
        services.close()


async def test_a_python_model_never_runs_on_the_event_loop(home: Path) -> None:
    """However fast its warm-up, user code may block (I/O, sleeps, other services)."""
    services, pool, _ = await _open(home, BatchingSettings(inline_below_ms=60_000))
    try:
        assert pool.get("sum").inline is False
    finally:
        await pool.close()
        services.close()


async def test_a_model_whose_load_raises_is_not_ready_and_the_log_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "home"
    services = build_services(Settings(home=home))
    monkeypatch.setenv("NEEDS_ENV_TOKEN", "registered with it")
    register_python(services, "needs-env", "needs_env")
    monkeypatch.delenv("NEEDS_ENV_TOKEN")  # served without it
    pool = ModelPool(services, [ModelRef("needs-env")], ServingMetrics(CollectorRegistry()))
    with caplog.at_level(logging.ERROR, logger="servewell.serving.pool"):
        await pool.load()
    try:
        assert not pool.is_ready
        assert (
            "NeedsEnvModel.load(artifacts_dir) raised KeyError: 'NEEDS_ENV_TOKEN'"
            in (pool.failures["needs-env"])
        )
        # Only the pool's lines: an earlier test's logging set-up may let others through.
        (record,) = [r for r in caplog.records if r.name == "servewell.serving.pool"]
        assert record.exc_info is not None  # the traceback, with the model's own frames
        assert isinstance(record.exc_info[1].__cause__, KeyError)  # type: ignore[union-attr]
    finally:
        await pool.close()
        services.close()


async def test_outputs_of_another_row_count_are_the_models_failure(tmp_path: Path) -> None:
    home = tmp_path / "home"
    services = build_services(Settings(home=home))
    register_python(services, "wrong", "wrong_output")
    pool = ModelPool(services, [ModelRef("wrong")], ServingMetrics(CollectorRegistry()))
    await pool.load()
    try:
        request = InferRequest(ModelRef("wrong"), {"x": [-4.0]})
        with pytest.raises(ModelFailed, match="wrong@1 gave 2 rows of 'y' for 1 input rows"):
            await Predictor(pool, InputLimits()).infer(request)
    finally:
        await pool.close()
        services.close()
