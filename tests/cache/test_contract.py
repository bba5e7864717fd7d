"""Every response cache passes the same suite; failures degrade to misses. Every cache
that also answers synchronously (``SyncResponseCache``) passes the sync suite too, on an
injected clock."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from fake_clock import FakeClock
from redis_server import PrivateRedis
from servewell.cache import (
    MemoryResponseCache,
    RedisResponseCache,
    ResponseCache,
    SyncResponseCache,
    cache_key,
)
from servewell.cache.memory import entry_cost


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[ResponseCache]:
    backend: ResponseCache
    if request.param == "memory":
        backend = MemoryResponseCache()
    else:
        backend = RedisResponseCache(
            request.getfixturevalue("redis_url"), prefix=f"test:{uuid.uuid4().hex}:"
        )
    yield backend
    await backend.close()


def _out(value: float) -> bytes:
    return f"answer {value:g}".encode()


def _value(entry: bytes | None) -> float | None:
    return None if entry is None else float(entry.decode().split()[1])


@pytest.mark.anyio
async def test_hit_miss_and_expiry(cache: ResponseCache) -> None:
    assert await cache.get("a") is None
    await cache.set("a", _out(7.0), ttl_s=0.3)
    assert await cache.get("a") == b"answer 7"
    await asyncio.sleep(0.4)
    assert await cache.get("a") is None
    assert (cache.stats.hits, cache.stats.misses) == (1, 2)


@pytest.mark.anyio
async def test_an_entry_kept_stale_is_read_by_get_stale_after_it_expires(
    cache: ResponseCache,
) -> None:
    """Stale-if-error: ``get`` misses once the TTL is over, ``get_stale`` still has the
    entry (without counting it); an entry not kept stale is gone from both."""
    await cache.set("kept", _out(1.0), ttl_s=0.2, stale_ttl_s=60)
    await cache.set("plain", _out(2.0), ttl_s=0.2)
    assert _value(await cache.get("kept")) == 1.0
    assert _value(await cache.get_stale("kept")) == 1.0  # fresh is stale-readable too
    await asyncio.sleep(0.3)
    assert await cache.get("kept") is None
    assert _value(await cache.get_stale("kept")) == 1.0
    assert await cache.get_stale("plain") is None
    assert await cache.get_stale("missing") is None
    assert (cache.stats.hits, cache.stats.misses) == (1, 1)
    await cache.set("kept", _out(3.0), ttl_s=60, stale_ttl_s=120)  # a new answer replaces it
    assert _value(await cache.get("kept")) == 3.0
    assert _value(await cache.get_stale("kept")) == 3.0


@pytest.mark.anyio
async def test_a_new_value_replaces_the_old(cache: ResponseCache) -> None:
    await cache.set("a", _out(1.0), ttl_s=60)
    await cache.set("a", _out(2.0), ttl_s=60)
    assert _value(await cache.get("a")) == 2.0


@pytest.mark.anyio
async def test_concurrent_reads_get_their_own_entries(cache: ResponseCache) -> None:
    await cache.set("a", _out(1.0), ttl_s=60)
    await cache.set("b", _out(2.0), ttl_s=60)
    got = await asyncio.gather(cache.get("a"), cache.get("missing"), cache.get("b"))
    assert [_value(entry) for entry in got] == [1.0, None, 2.0]
    assert (cache.stats.hits, cache.stats.misses) == (2, 1)


@pytest.mark.anyio
async def test_redis_writes_land_without_being_awaited(redis_url: str) -> None:
    """``set`` only queues the write; it still reaches Redis (``close`` waits for it),
    each entry with its own TTL."""
    prefix = f"test:{uuid.uuid4().hex}:"
    writer = RedisResponseCache(redis_url, prefix=prefix)
    for index in range(50):
        await writer.set(f"k{index}", _out(index), ttl_s=60 if index % 2 else 0.2)
    await writer.close()
    reader = RedisResponseCache(redis_url, prefix=prefix)
    got = await asyncio.gather(*(reader.get(f"k{index}") for index in range(50)))
    assert [_value(entry) for entry in got] == list(range(50))
    await asyncio.sleep(0.3)
    expired = await asyncio.gather(*(reader.get(f"k{index}") for index in range(4)))
    assert [_value(entry) for entry in expired] == [None, 1.0, None, 3.0]
    await reader.close()


def test_keys_depend_on_the_version_and_every_request_byte() -> None:
    key = cache_key("iris", 3, b"rest", b"application/json", b"", b'{"instances": [[1]]}')
    assert key.startswith("iris@3:")
    assert key == cache_key("iris", 3, b"rest", b"application/json", b"", b'{"instances": [[1]]}')
    assert key != cache_key("iris", 4, b"rest", b"application/json", b"", b'{"instances": [[1]]}')
    assert key != cache_key("iris", 3, b"v2", b"application/json", b"", b'{"instances": [[1]]}')
    assert key != cache_key("iris", 3, b"rest", b"application/json", b"", b'{"instances": [[2]]}')
    # Parts are length-prefixed: moving a byte from one part to the next is another key.
    assert cache_key("m", 1, b"ab", b"c") != cache_key("m", 1, b"a", b"bc")


def test_memory_cache_peeks_without_counting() -> None:
    """The HTTP layer peeks before it knows the caller may have the answer: a peek
    neither counts nor refreshes; ``count_hit`` does both."""
    cache = MemoryResponseCache(clock=lambda: clock[0])
    clock = [0.0]
    asyncio.run(cache.set("a", b"x", ttl_s=10))
    asyncio.run(cache.set("b", b"y", ttl_s=10))
    assert cache.peek("a") == b"x"
    assert cache.peek("missing") is None
    assert (cache.stats.hits, cache.stats.misses) == (0, 0)
    cache.count_hit("a")  # "a" is now the most recently used: "b" goes first
    assert cache.stats.hits == 1
    cache.max_bytes = cache.size_bytes
    asyncio.run(cache.set("c", b"z", ttl_s=10))
    assert (cache.peek("a"), cache.peek("b"), cache.peek("c")) == (b"x", None, b"z")
    clock[0] = 11.0
    assert cache.peek("a") is None  # expired: gone
    assert cache.size_bytes == entry_cost("c", b"z")


@pytest.mark.anyio
async def test_memory_cache_keeps_to_its_byte_budget() -> None:
    entry_bytes = entry_cost("k0", bytes(30))  # key + value + the entry's structure
    cache = MemoryResponseCache(max_bytes=3 * entry_bytes + entry_bytes // 2)
    for index in range(10):  # three fit
        await cache.set(f"k{index}", bytes([index]) * 30, ttl_s=60)
    assert cache.size_bytes == 3 * entry_bytes
    assert cache.stats.evictions == 7
    assert await cache.get("k9") == bytes([9]) * 30  # the newest survive
    assert await cache.get("k0") is None
    await cache.set("big", bytes(4 * entry_bytes), ttl_s=60)
    assert await cache.get("big") is None  # larger than the whole budget: not kept
    assert cache.stats.evictions == 7


@pytest.mark.anyio
async def test_redis_cache_failure_is_a_miss_and_recovers(private_redis: PrivateRedis) -> None:
    cache = RedisResponseCache(private_redis.url, timeout_s=0.2, retry_interval_s=0.2)
    await cache.set("a", _out(1.0), ttl_s=60)
    assert _value(await cache.get("a")) == 1.0
    private_redis.stop()
    assert await asyncio.wait_for(cache.get("a"), timeout=2) is None
    await cache.set("b", _out(2.0), ttl_s=60)  # swallowed
    assert cache.stats.errors >= 1
    private_redis.start()
    await asyncio.sleep(0.3)
    await cache.set("c", _out(3.0), ttl_s=60)  # a fresh Redis: the write script is reloaded
    assert _value(await cache.get("c")) == 3.0
    await cache.close()


# --- the sync suite: every SyncResponseCache -------------------------------------------


#: Entries of the sync suite: a two-character key and 30 bytes of value each, and what
#: one costs the in-process cache's byte budget.
ENTRY_BYTES = entry_cost("k1", bytes(30))

#: Every cache that answers synchronously, built on a clock with a budget of bytes.
SYNC_CACHES: dict[str, Callable[[FakeClock, int], SyncResponseCache]] = {
    "memory": lambda clock, max_bytes: MemoryResponseCache(max_bytes, clock=clock),
}


def _entry(index: int) -> bytes:
    return bytes([index]) * 30


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=sorted(SYNC_CACHES))
def make_sync_cache(
    request: pytest.FixtureRequest, clock: FakeClock
) -> Iterator[Callable[[int], SyncResponseCache]]:
    """A factory: the cache under test with room for ``entries`` suite entries."""
    built: list[SyncResponseCache] = []

    def make(entries: int = 100) -> SyncResponseCache:
        built.append(SYNC_CACHES[request.param](clock, entries * ENTRY_BYTES))
        return built[-1]

    yield make
    for cache in built:
        asyncio.run(cache.close())


@pytest.mark.anyio
async def test_sync_and_async_calls_see_the_same_entries(
    make_sync_cache: Callable[[int], SyncResponseCache],
) -> None:
    cache = make_sync_cache(100)
    cache.set_now("k1", _entry(1), ttl_s=60)
    await cache.set("k2", _entry(2), ttl_s=60)
    assert await cache.get("k1") == _entry(1)
    assert cache.get_now("k2") == _entry(2)
    assert cache.peek("k1") == _entry(1)
    assert cache.peek("k2") == _entry(2)
    cache.set_now("k2", _entry(3), ttl_s=60)  # a sync write replaces an async one
    assert await cache.get("k2") == _entry(3)
    assert cache.get_now("k9") is None
    assert await cache.get("k8") is None
    assert (cache.stats.hits, cache.stats.misses) == (3, 2)


def test_peek_neither_counts_nor_refreshes(
    make_sync_cache: Callable[[int], SyncResponseCache],
) -> None:
    cache = make_sync_cache(2)
    cache.set_now("k1", _entry(1), ttl_s=60)
    cache.set_now("k2", _entry(2), ttl_s=60)
    for _ in range(3):
        assert cache.peek("k1") == _entry(1)
    assert cache.peek("k9") is None
    assert (cache.stats.hits, cache.stats.misses) == (0, 0)
    cache.set_now("k3", _entry(3), ttl_s=60)  # "k1" is still the least recently used
    assert [cache.peek(key) for key in ("k1", "k2", "k3")] == [None, _entry(2), _entry(3)]
    assert cache.stats.evictions == 1


@pytest.mark.anyio
@pytest.mark.parametrize("touch", ["count_hit", "get_now", "get"])
async def test_a_counted_hit_refreshes_recency(
    make_sync_cache: Callable[[int], SyncResponseCache], touch: str
) -> None:
    cache = make_sync_cache(2)
    cache.set_now("k1", _entry(1), ttl_s=60)
    cache.set_now("k2", _entry(2), ttl_s=60)
    if touch == "count_hit":
        cache.count_hit("k1")
    elif touch == "get_now":
        assert cache.get_now("k1") == _entry(1)
    else:
        assert await cache.get("k1") == _entry(1)
    assert (cache.stats.hits, cache.stats.misses) == (1, 0)
    cache.set_now("k3", _entry(3), ttl_s=60)  # "k2" is now the least recently used
    assert [cache.peek(key) for key in ("k1", "k2", "k3")] == [_entry(1), None, _entry(3)]
    assert cache.stats.evictions == 1


@pytest.mark.anyio
@pytest.mark.parametrize("writer", ["set_now", "set"])
@pytest.mark.parametrize("reader", ["peek", "get_now", "get"])
async def test_entries_expire_through_every_call(
    make_sync_cache: Callable[[int], SyncResponseCache],
    clock: FakeClock,
    writer: str,
    reader: str,
) -> None:
    cache = make_sync_cache(2)

    async def read(key: str) -> bytes | None:
        if reader == "peek":
            return cache.peek(key)
        if reader == "get_now":
            return cache.get_now(key)
        return await cache.get(key)

    if writer == "set_now":
        cache.set_now("k1", _entry(1), ttl_s=10)
    else:
        await cache.set("k1", _entry(1), ttl_s=10)
    clock.advance(9.5)
    assert await read("k1") == _entry(1)
    clock.advance(1.0)
    assert await read("k1") is None
    assert cache.peek("k1") is None
    counted = (0, 0) if reader == "peek" else (1, 1)
    assert (cache.stats.hits, cache.stats.misses) == counted
    # The expired entry left the budget: two new ones fit without an eviction.
    cache.set_now("k2", _entry(2), ttl_s=10)
    cache.set_now("k3", _entry(3), ttl_s=10)
    assert (cache.peek("k2"), cache.peek("k3")) == (_entry(2), _entry(3))
    assert cache.stats.evictions == 0


@pytest.mark.anyio
async def test_a_stale_entry_lasts_its_stale_time_and_counts_in_the_budget(
    make_sync_cache: Callable[[int], SyncResponseCache], clock: FakeClock
) -> None:
    cache = make_sync_cache(3)
    cache.set_now("k1", _entry(1), ttl_s=10, stale_ttl_s=100)
    clock.advance(50)
    assert cache.peek("k1") is None  # expired: no hit, not even in the fast lane
    assert cache.get_now("k1") is None
    assert await cache.get_stale("k1") == _entry(1)  # ... and still kept
    clock.advance(51)
    assert await cache.get_stale("k1") is None  # past its stale time: gone
    # Stale entries take their share of the budget, oldest first out.
    cache.set_now("k2", _entry(2), ttl_s=1, stale_ttl_s=100)
    cache.set_now("k3", _entry(3), ttl_s=60)
    clock.advance(2)
    cache.set_now("k4", _entry(4), ttl_s=60)
    cache.set_now("k5", _entry(5), ttl_s=60)
    assert await cache.get_stale("k2") is None  # evicted to make room
    assert cache.stats.evictions == 1


def test_a_stale_entry_costs_one_float_more() -> None:
    cache = MemoryResponseCache()
    cache.set_now("k1", _entry(1), ttl_s=10, stale_ttl_s=100)
    cache.set_now("k2", _entry(2), ttl_s=10)
    assert entry_cost("k1", _entry(1), kept_stale=True) == entry_cost("k1", _entry(1)) + 24
    assert cache.size_bytes == entry_cost("k1", _entry(1), kept_stale=True) + entry_cost(
        "k2", _entry(2)
    )
    asyncio.run(cache.close())
    assert cache.size_bytes == 0


@pytest.mark.anyio
async def test_sync_writes_keep_to_the_byte_budget(
    make_sync_cache: Callable[[int], SyncResponseCache],
) -> None:
    cache = make_sync_cache(3)
    for index in range(10):  # three fit: the newest stay
        if index % 2:
            cache.set_now(f"k{index}", _entry(index), ttl_s=60)
        else:
            await cache.set(f"k{index}", _entry(index), ttl_s=60)
    assert cache.stats.evictions == 7
    assert [cache.peek(f"k{index}") for index in range(10)] == [None] * 7 + [
        _entry(7),
        _entry(8),
        _entry(9),
    ]
    cache.set_now("k9", _entry(99), ttl_s=60)  # a replaced entry costs only once
    assert cache.stats.evictions == 7
    cache.set_now("k0", bytes(4 * ENTRY_BYTES), ttl_s=60)  # larger than the budget
    assert cache.peek("k0") is None
    assert cache.stats.evictions == 7  # and nothing was evicted for it
    assert [cache.peek(f"k{index}") for index in (7, 8, 9)] == [_entry(7), _entry(8), _entry(99)]
