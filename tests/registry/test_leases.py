"""Leases in the registry, on SQLite and PostgreSQL: one holder at a time, renewed by
its holder, taken by another only once expired or given up."""

from __future__ import annotations

import threading

import pytest

from servewell.bootstrap import Services
from servewell.registry.leases import Leases, holder_id


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def leases(services: Services, clock: Clock) -> Leases:
    return Leases(services.registry, clock)


def test_a_free_lease_is_taken_and_renewed_by_its_holder(leases: Leases, clock: Clock) -> None:
    assert leases.holder("rollout:fraud") is None
    assert leases.acquire("rollout:fraud", "a", ttl_s=10)
    assert leases.holder("rollout:fraud") == "a"
    clock.now += 9
    assert leases.acquire("rollout:fraud", "a", ttl_s=10)  # renewed: 10 s from now
    clock.now += 9
    assert not leases.acquire("rollout:fraud", "b", ttl_s=10)
    assert leases.holder("rollout:fraud") == "a"


def test_an_expired_lease_is_taken_by_another(leases: Leases, clock: Clock) -> None:
    assert leases.acquire("alerts", "a", ttl_s=5)
    clock.now += 5
    assert leases.holder("alerts") is None
    assert leases.acquire("alerts", "b", ttl_s=5)
    assert not leases.acquire("alerts", "a", ttl_s=5)
    assert leases.holder("alerts") == "b"


def test_a_released_lease_is_free_at_once(leases: Leases) -> None:
    assert leases.acquire("alerts", "a", ttl_s=60)
    leases.release("alerts", "b")  # not b's: nothing changes
    assert leases.holder("alerts") == "a"
    leases.release("alerts", "a")
    assert leases.holder("alerts") is None
    assert leases.acquire("alerts", "b", ttl_s=60)


def test_leases_are_independent(leases: Leases) -> None:
    assert leases.acquire("rollout:fraud", "a", ttl_s=60)
    assert leases.acquire("rollout:churn", "b", ttl_s=60)


def test_of_many_processes_racing_for_a_new_lease_one_wins(services: Services) -> None:
    leases = Leases(services.registry)
    holders = [holder_id() for _ in range(8)]
    assert len(set(holders)) == len(holders)
    won: list[str] = []
    start = threading.Barrier(len(holders))

    def race(holder: str) -> None:
        start.wait(timeout=30)
        if leases.acquire("race", holder, ttl_s=60):
            won.append(holder)

    threads = [threading.Thread(target=race, args=(holder,)) for holder in holders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(won) == 1
    assert leases.holder("race") == won[0]


def test_a_ttl_must_be_positive(leases: Leases) -> None:
    with pytest.raises(ValueError, match="positive"):
        leases.acquire("alerts", "a", ttl_s=0)
