"""The rollout driver on a real registry (SQLite and PostgreSQL), its clock moved by the
test and its measurements counted by the real per-arm metrics: steps, completion (the
production alias moves, by ``rollout``), aborts naming the bound and the numbers, waits
for too few requests, two drivers advancing a rollout once, and a driver carrying on
once the lease of one that stopped has lapsed."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry

from fake_clock import FakeClock
from servewell.bootstrap import Services
from servewell.core.ref import ModelRef
from servewell.core.rollout import Bounds, Rollout, RolloutState
from servewell.core.traffic import Arm
from servewell.errors import InvalidRollout, VersionNotFound
from servewell.observability import ServingMetrics
from servewell.registry.rollout_traffic import apply_step
from servewell.registry.rollouts import RolloutStore
from servewell.registry.traffic import TrafficStore
from servewell.serving.rollout import LEASE_TTL_S, REPORT_S, RolloutDriver
from serving_models import register_python

pytestmark = pytest.mark.anyio


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())


@pytest.fixture
def fraud(services: Services) -> str:
    """'fraud' versions 1 (production), 2 and 3."""
    for _ in range(3):
        register_python(services, "fraud", "sum", signature="sum.json")
    services.registry.set_alias("fraud", "production", 1)
    return "fraud"


@pytest.fixture
def store(services: Services, clock: FakeClock) -> RolloutStore:
    return RolloutStore(services.registry, clock)


def _start(store: RolloutStore, steps: tuple[int, ...] = (50, 100), **bounds: float) -> Rollout:
    rollout = store.start(
        "fraud", 2, steps, every_s=10, bounds=Bounds(**{"min_requests": 5, **bounds})
    )
    apply_step(store, rollout)
    return rollout


def _driver(services: Services, clock: FakeClock) -> RolloutDriver:
    metrics = ServingMetrics(CollectorRegistry())
    return RolloutDriver(services.registry, metrics, report_s=0, clock=clock)


def _serve(
    driver: RolloutDriver, version: int, count: int, status: int = 200, s: float = 0.001
) -> None:
    """``count`` requests the split routed to ``version``, as the gateway counts them."""
    for _ in range(count):
        driver.metrics.observe_arm("fraud", str(version), str(version), status, s)


async def _step(clock: FakeClock, *drivers: RolloutDriver, seconds: float = 1.0) -> None:
    clock.advance(seconds)
    for driver in drivers:
        await driver.tick()


async def test_a_good_candidate_takes_each_step_then_production(
    services: Services, fraud: str, store: RolloutStore, clock: FakeClock
) -> None:
    _start(store, (10, 50, 100))
    traffic = TrafficStore(services.registry)
    policy = traffic.get(fraud)
    assert policy is not None
    assert list(policy.arms) == [Arm("1", 90), Arm("2", 10)]
    driver = _driver(services, clock)
    await _step(clock, driver)  # first sight: what the process counted before is not reported
    for _ in range(2):
        _serve(driver, 1, 20)
        _serve(driver, 2, 20)
        await _step(clock, driver)
        await _step(clock, driver, seconds=10)
    rollout = store.get(fraud)
    assert rollout.state is RolloutState.COMPLETED
    assert rollout.percent == 100
    assert [e.kind for e in store.events(rollout)] == ["started", "step", "completed"]
    assert [e.percent for e in store.events(rollout)] == [10, 50, 100]
    assert traffic.get(fraud) is None
    assert services.registry.resolve(ModelRef(fraud)).version == 2
    last = services.registry.alias_history(fraud, "production")[-1]
    assert (last.from_version, last.to_version, last.moved_by) == (1, 2, "rollout")
    assert (
        driver.metrics.registry.get_sample_value("servewell_rollout_step_percent", {"model": fraud})
        == 100
    )


@pytest.mark.parametrize("status", [500, 499])
async def test_a_failing_candidate_aborts_and_says_why(
    services: Services, fraud: str, store: RolloutStore, clock: FakeClock, status: int
) -> None:
    """5xx answers are errors, and so are requests the client gave up on (499: a hanging
    candidate), not 4xx the error-rate bound would ignore."""
    _start(store)
    driver = _driver(services, clock)
    await _step(clock, driver)
    _serve(driver, 1, 30)
    _serve(driver, 2, 30, status=status)
    await _step(clock, driver)
    await _step(clock, driver, seconds=10)
    rollout = store.get(fraud)
    assert rollout.state is RolloutState.ABORTED
    assert rollout.percent == 0
    assert rollout.reason is not None
    assert "error_rate bound broken at 50%" in rollout.reason
    assert "100.0% (30 of 30) on candidate 2 vs 0.0% (0 of 30) on primary 1" in rollout.reason
    assert "over the last 12 s" in rollout.reason
    assert TrafficStore(services.registry).get(fraud) is None
    assert [m.to_version for m in services.registry.alias_history(fraud, "production")] == [1]
    samples = driver.metrics.registry
    assert (
        samples.get_sample_value(
            "servewell_rollout_aborts_total", {"model": fraud, "reason": "error_rate"}
        )
        == 1
    )
    assert samples.get_sample_value("servewell_rollout_step_percent", {"model": fraud}) == 0


async def test_a_slow_candidate_aborts_on_its_p99(
    services: Services, fraud: str, store: RolloutStore, clock: FakeClock
) -> None:
    _start(store)
    driver = _driver(services, clock)
    await _step(clock, driver)
    _serve(driver, 1, 30, s=0.002)
    _serve(driver, 2, 30, s=0.4)
    await _step(clock, driver)
    await _step(clock, driver, seconds=10)
    rollout = store.get(fraud)
    assert rollout.state is RolloutState.ABORTED
    assert rollout.reason is not None
    assert rollout.reason.startswith("p99 bound broken")


async def test_too_few_requests_wait_and_say_so(
    services: Services, fraud: str, store: RolloutStore, clock: FakeClock
) -> None:
    _start(store, min_requests=50)
    driver = _driver(services, clock)
    await _step(clock, driver)
    _serve(driver, 1, 60)
    _serve(driver, 2, 3)
    await _step(clock, driver)
    await _step(clock, driver, seconds=30)
    rollout = store.get(fraud)
    assert rollout.state is RolloutState.RUNNING
    assert rollout.step_index == 0
    assert rollout.note is not None
    assert "version 2 has 3 of 50" in rollout.note
    _serve(driver, 2, 47)  # the step lasts until the candidate has enough
    await _step(clock, driver)
    await _step(clock, driver)
    assert store.get(fraud).state is RolloutState.COMPLETED


async def test_two_drivers_advance_it_once_and_both_count(
    services: Services, fraud: str, store: RolloutStore, clock: FakeClock
) -> None:
    _start(store, (10, 50, 100), min_requests=20)
    first, second = _driver(services, clock), _driver(services, clock)
    await _step(clock, first, second)
    for _ in range(2):
        for driver in (first, second):  # neither alone has the 20 requests a version needs
            _serve(driver, 1, 10)
            _serve(driver, 2, 10)
        await _step(clock, first, second)
        await _step(clock, second, first, seconds=10)
    rollout = store.get(fraud)
    assert rollout.state is RolloutState.COMPLETED
    events = store.events(rollout)
    assert [e.kind for e in events] == ["started", "step", "completed"]
    assert len({e.by for e in events[1:]}) == 1  # the lease holder's


async def test_another_driver_carries_on_once_the_lease_lapses(
    services: Services, fraud: str, store: RolloutStore, clock: FakeClock
) -> None:
    _start(store, (10, 50, 100))
    gone, heir = _driver(services, clock), _driver(services, clock)
    await _step(clock, gone)
    _serve(gone, 1, 10)
    _serve(gone, 2, 10)
    await _step(clock, gone, seconds=11)
    await _step(clock, gone)
    assert store.get(fraud).step_index == 1
    # ``gone`` stops ticking without giving its lease up (killed); ``heir`` waits it out
    await _step(clock, heir)
    assert store.get(fraud).step_index == 1
    await _step(clock, heir, seconds=LEASE_TTL_S)
    _serve(heir, 1, 10)
    _serve(heir, 2, 10)
    await _step(clock, heir)
    await _step(clock, heir, seconds=10)
    rollout = store.get(fraud)
    assert rollout.state is RolloutState.COMPLETED
    assert store.events(rollout)[-1].by == heir.holder


def test_refusals_leave_the_registry_as_it_was(
    services: Services, fraud: str, store: RolloutStore
) -> None:
    with pytest.raises(VersionNotFound):
        store.start("fraud", 9, (50, 100), 10, Bounds())
    with pytest.raises(InvalidRollout, match="already serves"):
        store.start("fraud", 1, (50, 100), 10, Bounds())
    traffic = TrafficStore(services.registry)
    traffic.set_split("fraud", [Arm("1", 90), Arm("3", 10)])
    with pytest.raises(InvalidRollout, match="set by hand"):
        store.start("fraud", 2, (50, 100), 10, Bounds())
    traffic.clear("fraud")
    _start(store)
    with pytest.raises(InvalidRollout, match="abort it first"):
        store.start("fraud", 3, (50, 100), 10, Bounds())
    assert [e.kind for e in store.events(store.get("fraud"))] == ["started"]


async def test_a_process_reports_at_most_every_few_seconds(
    services: Services, fraud: str, store: RolloutStore, clock: FakeClock
) -> None:
    rollout = _start(store)
    driver = RolloutDriver(services.registry, ServingMetrics(CollectorRegistry()), clock=clock)
    await _step(clock, driver)
    _serve(driver, 2, 7)
    await _step(clock, driver)
    assert driver.observations.since(rollout.id, rollout.started_at) == {}
    await _step(clock, driver, seconds=REPORT_S)
    assert driver.observations.since(rollout.id, rollout.started_at)[2].requests == 7


def test_a_split_written_late_for_an_aborted_rollout_is_undone(
    services: Services, fraud: str, store: RolloutStore
) -> None:
    """A holder that moved a step on, then wrote its split after an abort from the CLI
    had already cleared the traffic, clears it again."""
    rollout = _start(store)
    assert store.end(rollout, RolloutState.ABORTED, "aborted by hand")
    apply_step(store, rollout)
    assert TrafficStore(services.registry).get(fraud) is None
    assert store.get(fraud).settled


async def test_a_model_the_settings_file_owns_is_never_moved(
    services: Services, fraud: str, store: RolloutStore, clock: FakeClock
) -> None:
    """A rollout started before the file declared the model (``source: file``) is
    aborted, the reason naming the file, and production stays where it was."""
    from datetime import UTC, datetime

    from servewell.core.traffic import declared_policy
    from servewell.settings.traffic import DeclaredTraffic

    _start(store)
    owned = DeclaredTraffic(split={"1": 50, "3": 50}, source="file")
    declared = {fraud: declared_policy(fraud, owned, "servewell.yaml", datetime.now(UTC))}
    metrics = ServingMetrics(CollectorRegistry())
    driver = RolloutDriver(services.registry, metrics, report_s=0, clock=clock, declared=declared)
    await _step(clock, driver)
    _serve(driver, 1, 30)
    _serve(driver, 2, 30)
    await _step(clock, driver, seconds=10)
    rollout = store.get(fraud)
    assert rollout.state is RolloutState.ABORTED
    assert rollout.reason is not None
    assert "declared in servewell.yaml with source: file" in rollout.reason
    assert TrafficStore(services.registry).get(fraud) is None
    assert services.registry.resolve(ModelRef(fraud)).version == 1
