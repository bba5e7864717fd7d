"""The memory budget in the pool, without HTTP: a version's memory is measured at its
first load (in process and in its own process) and stored with it, later loads count
the stored figure, and a load that does not fit is refused with the numbers, counted,
while the versions loaded keep serving."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from servewell.bootstrap import Services, build_services
from servewell.core.ref import ModelRef
from servewell.errors import OverMemoryBudget
from servewell.observability import ServingMetrics
from servewell.observability.memory_metrics import MemoryMetrics
from servewell.serving.budget import MemoryBudget, budget_bytes, estimate
from servewell.serving.pool import ModelPool
from servewell.settings import ServerSettings, Settings
from serving_models import register_python

pytestmark = pytest.mark.anyio

HOG_BYTES = 64 * 2**20  # tests/python_models/hog.py
MB = 2**20


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def services(tmp_path: Path) -> Services:
    """``hog`` v1 and v2 (each holds 64 MiB once loaded), ``small`` v1 (sum)."""
    services = build_services(Settings(home=tmp_path / "home"))
    register_python(services, "hog", "hog")
    register_python(services, "hog", "hog")
    register_python(services, "small", "sum", signature="sum.json")
    return services


@pytest.fixture
async def closing(services: Services) -> AsyncIterator[list[ModelPool]]:
    pools: list[ModelPool] = []
    yield pools
    for pool in pools:
        await pool.close()
    services.close()


def _pool(
    services: Services, pools: list[ModelPool], limit_bytes: int | None, **server: object
) -> tuple[ModelPool, CollectorRegistry]:
    settings = Settings(home=services.settings.home, server=ServerSettings(**server))  # type: ignore[arg-type]
    registry = CollectorRegistry()
    metrics = ServingMetrics(registry)
    budget = MemoryBudget(settings, limit_bytes, MemoryMetrics(metrics))
    pool = ModelPool(services, [], metrics, budget=budget)
    pools.append(pool)
    return pool, registry


async def test_the_first_load_is_measured_stored_and_counted_by_later_loads(
    services: Services, closing: list[ModelPool]
) -> None:
    unmeasured = services.registry.get_version("hog", 1)
    assert unmeasured.memory_bytes is None
    size = unmeasured.original.size_bytes
    assert estimate(services.settings, unmeasured).size_bytes == size * 3  # the factor

    pool, registry = _pool(services, closing, None)
    deployment = await pool.add(ModelRef("hog", version=1))
    measured = services.registry.get_version("hog", 1).memory_bytes
    assert measured is not None
    assert measured >= HOG_BYTES
    assert pool.budget.held_bytes == measured
    labels = {"model": "hog", "version": "1"}
    assert registry.get_sample_value("servewell_model_memory_bytes", labels) == measured
    assert registry.get_sample_value("servewell_process_resident_memory_bytes") > HOG_BYTES

    pool.remove(deployment)
    await pool.stop_version(deployment, 5)
    assert pool.budget.held_bytes == 0
    assert registry.get_sample_value("servewell_model_memory_bytes", labels) is None

    services.registry.record_memory("hog", 1, 7 * MB)  # as if measured so
    again, _ = _pool(services, closing, None)
    await again.add(ModelRef("hog", version=1))
    assert again.budget.held_bytes == 7 * MB  # the stored figure, not a new measurement
    assert services.registry.get_version("hog", 1).memory_bytes == 7 * MB  # kept


async def test_a_model_in_its_own_process_is_measured_by_that_process(
    services: Services, closing: list[ModelPool]
) -> None:
    isolated = Settings.model_validate(
        {"home": services.settings.home, "models": {"hog": {"isolation": "process"}}}
    )
    process_services = build_services(isolated)
    pool = ModelPool(process_services, [], ServingMetrics(CollectorRegistry()))
    try:
        deployment = await pool.add(ModelRef("hog", version=2))
        assert deployment.isolated is not None
        measured = services.registry.get_version("hog", 2).memory_bytes
        # The child's whole resident set: the interpreter, numpy and the 64 MiB.
        assert measured is not None
        assert measured > HOG_BYTES
    finally:
        await pool.close()
        process_services.close()


async def test_a_load_over_the_budget_is_refused_with_the_numbers_and_counted(
    services: Services, closing: list[ModelPool], caplog: pytest.LogCaptureFixture
) -> None:
    services.registry.record_memory("hog", 1, 40 * MB)
    services.registry.record_memory("hog", 2, 30 * MB)
    pool, registry = _pool(services, closing, 64 * MB)
    first = await pool.add(ModelRef("hog", version=1))
    with caplog.at_level(logging.WARNING), pytest.raises(OverMemoryBudget) as refused:
        await pool.add(ModelRef("hog", version=2))
    assert refused.value.detail == {
        "model": "hog",
        "version": 2,
        "needed_bytes": 30 * MB,
        "loaded_bytes": 40 * MB,
        "budget_bytes": 64 * MB,
    }
    assert refused.value.exit_code == 10
    assert int(refused.value.status) == 507
    assert "hog@2 needs about 30.0 MB beside the 40.0 MB" in refused.value.message
    assert any("over the memory budget of 64.0 MB" in r.getMessage() for r in caplog.records)
    labels = {"model": "hog", "version": "2", "reason": "memory_budget"}
    assert registry.get_sample_value("servewell_model_load_refusals_total", labels) == 1
    assert pool.find("hog", 2) is None
    assert pool.find("hog", 1) is first
    assert "memory budget" in pool.failed_versions[("hog", 2)]
    assert pool.budget.held_bytes == 40 * MB  # a refusal holds nothing

    pool.remove(first)
    await pool.stop_version(first, 5)
    await pool.add(ModelRef("hog", version=2))  # room now
    assert ("hog", 2) not in pool.failed_versions


async def test_an_unmeasured_version_is_estimated_from_its_artifact(
    services: Services, closing: list[ModelPool]
) -> None:
    size = services.registry.get_version("small", 1).original.size_bytes
    pool, _ = _pool(services, closing, size * 10 - 1, memory_estimate_factor=10)
    with pytest.raises(OverMemoryBudget, match="small@1 needs about"):
        await pool.add(ModelRef("small"))
    assert services.registry.get_version("small", 1).memory_bytes is None  # never loaded


def test_the_default_budget_is_a_share_of_the_machine_per_worker() -> None:
    assert budget_bytes(Settings(server=ServerSettings(memory_budget_mb=512))) == 512 * MB
    one = budget_bytes(Settings())
    assert one is not None
    assert one > 0
    two = budget_bytes(Settings(server=ServerSettings(workers=2)))
    assert two is not None
    assert abs(two - one / 2) <= 1
