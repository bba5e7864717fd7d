"""Every worker's copy of the traffic policies follows the registry within a second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from servewell.bootstrap import Services, build_services
from servewell.core.traffic import Arm, Shadow
from servewell.registry.traffic import TrafficStore
from servewell.serving.traffic import TrafficPolicies
from serving_models import register_python

WAIT_S = 20.0  # generous: the machine is shared; the refresh runs every 0.1 s here


async def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, "the policies did not follow the registry"
        await asyncio.sleep(0.05)


@pytest.mark.anyio
async def test_changes_made_elsewhere_reach_the_table(services: Services) -> None:
    for _ in range(2):
        register_python(services, "fraud", "sum", signature="sum.json")
    table = TrafficPolicies(TrafficStore(services.registry), refresh_interval_s=0.1)
    await table.start()
    other = build_services(services.settings)  # another process on the same registry
    try:
        elsewhere = TrafficStore(other.registry)
        assert table.policy("fraud") is None
        first = table.revision

        await asyncio.to_thread(elsewhere.set_split, "fraud", [Arm("1", 80), Arm("2", 20)])
        await _until(lambda: table.policy("fraud") is not None)
        policy = table.policy("fraud")
        assert policy is not None
        assert policy.arms == (Arm("1", 80), Arm("2", 20))

        await asyncio.to_thread(elsewhere.set_shadow, "fraud", Shadow("2", 10))
        await _until(lambda: (p := table.policy("fraud")) is not None and p.shadow is not None)

        before_move = table.revision
        await asyncio.to_thread(other.registry.set_alias, "fraud", "production", 2)
        await _until(lambda: table.revision != before_move)
        assert table.revision is not None
        assert first is not None
        assert table.revision.aliases > first.aliases

        await asyncio.to_thread(elsewhere.clear, "fraud")
        await _until(lambda: table.policy("fraud") is None)
    finally:
        other.close()
        await table.stop()


@pytest.mark.anyio
async def test_an_unchanged_registry_is_not_re_read(services: Services) -> None:
    table = TrafficPolicies(TrafficStore(services.registry))
    assert await table.refresh() is True  # the first read
    assert await table.refresh() is False
