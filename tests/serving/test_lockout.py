"""The lockout of client addresses that fail to authenticate too often, on the real
limiters: in process on an injected clock, and in Redis (down, too)."""

from __future__ import annotations

import uuid

import pytest

from fake_clock import FakeClock
from servewell.core.rate import Rate
from servewell.errors import LockedOut, RateLimited
from servewell.limits import MemoryRateLimiter, RedisRateLimiter
from servewell.serving.lockout import Lockout


def _in_process(rate: str = "3/minute", **options: object) -> tuple[Lockout, FakeClock]:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    return Lockout(limiter, Rate.parse(rate), limiter, clock=clock, **options), clock  # type: ignore[arg-type]


def test_the_failure_past_the_budget_locks_the_address_out_until_a_token_is_back() -> None:
    lockout, clock = _in_process("3/minute")  # a token back every 20 s
    for _ in range(3):
        lockout.check("10.0.0.1")
        lockout.count_failure_now("10.0.0.1")
    with pytest.raises(LockedOut) as refused:
        lockout.count_failure_now("10.0.0.1")
    assert isinstance(refused.value, RateLimited)  # a 429 with Retry-After
    assert refused.value.retry_after_s == 20
    assert "too many failed authentications from client 10.0.0.1" in refused.value.message
    assert refused.value.caller == "ip:10.0.0.1"  # counted as anonymous, never by address
    clock.advance(19)
    with pytest.raises(LockedOut) as still:
        lockout.check("10.0.0.1")  # before any key is looked at
    assert still.value.retry_after_s == 1
    lockout.check("10.0.0.2")  # another address is not locked
    clock.advance(1.5)
    lockout.check("10.0.0.1")  # a token is back
    lockout.count_failure_now("10.0.0.1")
    with pytest.raises(LockedOut):
        lockout.count_failure_now("10.0.0.1")  # and gone again


def test_the_table_of_locked_addresses_is_bounded() -> None:
    lockout, _ = _in_process("1/hour", max_locked=2)
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        lockout.count_failure_now(address)
        with pytest.raises(LockedOut):
            lockout.count_failure_now(address)
    lockout.check("10.0.0.1")  # the oldest lockout was forgotten...
    with pytest.raises(LockedOut):
        lockout.count_failure_now("10.0.0.1")  # ...but not its empty bucket
    for address in ("10.0.0.1", "10.0.0.3"):
        with pytest.raises(LockedOut):
            lockout.check(address)


@pytest.mark.anyio
async def test_replicas_share_one_budget_in_redis(redis_url: str) -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    first, second = (RedisRateLimiter(redis_url, prefix=prefix) for _ in range(2))
    try:
        rate = Rate.parse("2/hour")
        replicas = [Lockout(first, rate), Lockout(second, rate)]
        assert not replicas[0].decides_now
        await replicas[0].count_failure("10.0.0.1")
        await replicas[1].count_failure("10.0.0.1")
        replicas[1].check("10.0.0.1")  # not locked yet: two failures were allowed
        with pytest.raises(LockedOut):
            await replicas[0].count_failure("10.0.0.1")
        with pytest.raises(LockedOut):
            await replicas[1].count_failure("10.0.0.1")  # it learns at its next failure
        with pytest.raises(LockedOut):
            replicas[1].check("10.0.0.1")
    finally:
        await first.close()
        await second.close()


@pytest.mark.anyio
@pytest.mark.parametrize("policy", ["fail_open", "fail_closed"])
async def test_a_limiter_that_cannot_decide_locks_nobody_out(policy: str) -> None:
    """Redis unreachable: every failure stays a plain 401 (locking out on a guess would
    lock everyone out with fail_closed)."""
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0", failure_policy=policy, timeout_s=0.2)  # type: ignore[arg-type]
    try:
        lockout = Lockout(limiter, Rate.parse("1/hour"))
        for _ in range(3):
            await lockout.count_failure("10.0.0.1")
        lockout.check("10.0.0.1")
    finally:
        await limiter.close()
