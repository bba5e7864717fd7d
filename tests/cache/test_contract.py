"""Every response cache passes the same suite; failures degrade to misses."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from redis_server import PrivateRedis
from servewell.cache import MemoryResponseCache, RedisResponseCache, ResponseCache, cache_key
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
