"""Every rate limiter backend passes the same suite; the Redis one also shares budgets and
survives its Redis going away. Every limiter that also decides synchronously
(``SyncRateLimiter``) passes the sync suite too, on an injected clock."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from fake_clock import FakeClock
from redis_server import PrivateRedis
from servewell.core.rate import Rate
from servewell.limits import MemoryRateLimiter, RateLimiter, RedisRateLimiter, SyncRateLimiter


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    backend: RateLimiter
    if request.param == "memory":
        backend = MemoryRateLimiter()
    else:
        url = request.getfixturevalue("redis_url")
        backend = RedisRateLimiter(url, prefix=f"test:{uuid.uuid4().hex}:")
    yield backend
    await backend.close()


@pytest.mark.anyio
async def test_bucket_allows_its_limit_then_refuses(limiter: RateLimiter) -> None:
    rate = Rate.parse("5/minute")
    decisions = [await limiter.acquire("key:a", rate) for _ in range(7)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
    assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]
    refused = decisions[-1]
    assert refused.limit == 5
    assert 0 < refused.retry_after_s <= 12.0  # one token refills every 12 s
    assert refused.headers()["RateLimit-Limit"] == "5"


@pytest.mark.anyio
async def test_buckets_are_independent(limiter: RateLimiter) -> None:
    rate = Rate.parse("1/hour")
    assert (await limiter.acquire("key:a", rate)).allowed
    assert not (await limiter.acquire("key:a", rate)).allowed
    assert (await limiter.acquire("key:b", rate)).allowed


@pytest.mark.anyio
async def test_concurrent_checks_each_get_their_own_decision(limiter: RateLimiter) -> None:
    """Checks made together (one Redis pipeline, one script call per bucket) decide as
    if made one by one, in order."""
    five, one = Rate.parse("5/minute"), Rate.parse("1/hour")
    calls = [("key:a", five)] * 3 + [("key:b", one)] * 2 + [("key:a", five)] * 4
    decisions = await asyncio.gather(*(limiter.acquire(bucket, rate) for bucket, rate in calls))
    on_a = [d for (bucket, _), d in zip(calls, decisions, strict=True) if bucket == "key:a"]
    on_b = [d for (bucket, _), d in zip(calls, decisions, strict=True) if bucket == "key:b"]
    assert [d.allowed for d in on_a] == [True] * 5 + [False] * 2
    assert [d.remaining for d in on_a] == [4, 3, 2, 1, 0, 0, 0]
    assert all(0 < d.retry_after_s <= 12.0 for d in on_a[5:])
    assert [d.allowed for d in on_b] == [True, False]
    assert [d.limit for d in on_b] == [1, 1]


@pytest.mark.anyio
async def test_tokens_refill(limiter: RateLimiter) -> None:
    rate = Rate(limit=2, period_s=0.2)  # a token every 0.1 s
    for _ in range(2):
        assert (await limiter.acquire("key:fast", rate)).allowed
    assert not (await limiter.acquire("key:fast", rate)).allowed
    await asyncio.sleep(0.25)
    assert (await limiter.acquire("key:fast", rate)).allowed


@pytest.mark.anyio
async def test_two_redis_limiters_share_one_budget(redis_url: str) -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    first, second = (
        RedisRateLimiter(redis_url, prefix=prefix),
        RedisRateLimiter(redis_url, prefix=prefix),
    )
    rate = Rate.parse("10/minute")
    results = await asyncio.gather(
        *(limiter.acquire("key:shared", rate) for limiter in [first, second] * 10)
    )
    assert sum(d.allowed for d in results) == 10
    await first.close()
    await second.close()


@pytest.mark.anyio
@pytest.mark.parametrize(("policy", "allowed"), [("fail_open", True), ("fail_closed", False)])
async def test_redis_down_applies_the_policy_and_recovers(
    private_redis: PrivateRedis, policy: str, allowed: bool
) -> None:
    limiter = RedisRateLimiter(
        private_redis.url,
        failure_policy=policy,
        timeout_s=0.2,
        retry_interval_s=0.2,  # type: ignore[arg-type]
    )
    rate = Rate.parse("2/minute")
    assert (await limiter.acquire("key:x", rate)).allowed
    private_redis.stop()
    down = await asyncio.wait_for(limiter.acquire("key:x", rate), timeout=2)
    assert down.degraded
    assert down.allowed is allowed
    again = await asyncio.wait_for(limiter.acquire("key:x", rate), timeout=2)
    assert again.degraded  # not asked again within retry_interval_s: no waiting
    await asyncio.sleep(0.25)  # asked again, together: every call gets the policy
    together = await asyncio.wait_for(
        asyncio.gather(*(limiter.acquire("key:x", rate) for _ in range(3))), timeout=2
    )
    assert [(d.degraded, d.allowed) for d in together] == [(True, allowed)] * 3
    private_redis.start()  # a fresh, empty Redis on the same port
    await asyncio.sleep(0.3)
    recovered = await limiter.acquire("key:x", rate)
    assert not recovered.degraded
    assert recovered.allowed
    assert recovered.remaining == 1
    await limiter.close()


# --- token rates: many tokens at once (take) ------------------------------------------


@pytest.mark.anyio
async def test_take_is_all_or_nothing(limiter: RateLimiter) -> None:
    rate = Rate(limit=1000, period_s=60.0)
    first = await limiter.take("key:t:tpm", rate, 700)
    assert first.allowed
    assert first.remaining == 300
    refused = await limiter.take("key:t:tpm", rate, 400)
    assert not refused.allowed
    assert refused.remaining == 300  # nothing taken
    assert 0 < refused.retry_after_s <= 6.1  # 100 tokens at 1000/minute
    assert (await limiter.take("key:t:tpm", rate, 300)).allowed


@pytest.mark.anyio
async def test_forced_take_leaves_a_debt_the_next_takes_wait_for(limiter: RateLimiter) -> None:
    rate = Rate(limit=100, period_s=60.0)
    assert (await limiter.take("key:d:tpm", rate, 90)).allowed
    forced = await limiter.take("key:d:tpm", rate, 500, force=True)
    assert forced.allowed
    assert forced.remaining == 0
    refused = await limiter.take("key:d:tpm", rate, 1)
    assert not refused.allowed
    assert refused.retry_after_s > 60  # the debt is capped at one period's tokens: -100
    assert refused.retry_after_s <= 61.0
    assert (await limiter.acquire("key:other", rate)).allowed  # other buckets unaffected


@pytest.mark.anyio
@pytest.mark.parametrize(("policy", "allowed"), [("fail_open", True), ("fail_closed", False)])
async def test_take_with_redis_down_applies_the_policy(
    private_redis: PrivateRedis, policy: str, allowed: bool
) -> None:
    limiter = RedisRateLimiter(
        private_redis.url,
        failure_policy=policy,
        timeout_s=0.2,
        retry_interval_s=0.2,  # type: ignore[arg-type]
    )
    rate = Rate(limit=50, period_s=60.0)
    assert (await limiter.take("key:x:tpm", rate, 50)).allowed
    assert not (await limiter.take("key:x:tpm", rate, 1)).allowed
    private_redis.stop()
    down = await asyncio.wait_for(limiter.take("key:x:tpm", rate, 1), timeout=2)
    assert (down.degraded, down.allowed) == (True, allowed)
    private_redis.start()
    await asyncio.sleep(0.3)
    recovered = await limiter.take("key:x:tpm", rate, 10)  # the script loaded again
    assert (recovered.degraded, recovered.allowed, recovered.remaining) == (False, True, 40)
    await limiter.close()


# --- the sync suite: every SyncRateLimiter ---------------------------------------------


#: Every limiter that decides synchronously, built on a clock.
SYNC_LIMITERS: dict[str, Callable[[FakeClock], SyncRateLimiter]] = {
    "memory": lambda clock: MemoryRateLimiter(clock=clock),
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=sorted(SYNC_LIMITERS))
async def sync_limiter(
    request: pytest.FixtureRequest, clock: FakeClock
) -> AsyncIterator[SyncRateLimiter]:
    backend = SYNC_LIMITERS[request.param](clock)
    yield backend
    await backend.close()


@pytest.mark.anyio
async def test_acquire_now_and_acquire_share_buckets(sync_limiter: SyncRateLimiter) -> None:
    rate = Rate.parse("4/minute")
    decisions = []
    for index in range(6):
        if index % 2:
            decisions.append(await sync_limiter.acquire("key:a", rate))
        else:
            decisions.append(sync_limiter.acquire_now("key:a", rate))
    assert [d.allowed for d in decisions] == [True] * 4 + [False] * 2
    assert [d.remaining for d in decisions] == [3, 2, 1, 0, 0, 0]
    assert sync_limiter.acquire_now("key:b", rate).allowed  # buckets stay independent
    assert not (await sync_limiter.acquire("key:a", rate)).allowed


@pytest.mark.anyio
async def test_tokens_refill_on_the_clock_for_both_calls(
    sync_limiter: SyncRateLimiter, clock: FakeClock
) -> None:
    rate = Rate(limit=2, period_s=20)  # a token every 10 s
    assert sync_limiter.acquire_now("key:x", rate).allowed
    assert (await sync_limiter.acquire("key:x", rate)).allowed
    refused = sync_limiter.acquire_now("key:x", rate)
    assert not refused.allowed
    assert 0 < refused.retry_after_s <= 10.0
    clock.advance(9.0)
    assert not (await sync_limiter.acquire("key:x", rate)).allowed
    clock.advance(1.5)
    assert sync_limiter.acquire_now("key:x", rate).allowed  # one token back
    assert not (await sync_limiter.acquire("key:x", rate)).allowed
    clock.advance(60.0)  # never more than the limit, however long it rests
    assert [sync_limiter.acquire_now("key:x", rate).allowed for _ in range(3)] == [
        True,
        True,
        False,
    ]
