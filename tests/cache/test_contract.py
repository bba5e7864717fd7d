"""Every response cache passes the same suite; failures degrade to misses."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import numpy as np
import pytest

from redis_server import PrivateRedis
from servewell.cache import (
    MemoryResponseCache,
    RedisResponseCache,
    ResponseCache,
    cache_key,
    decode_outputs,
    encode_outputs,
)


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


@pytest.mark.anyio
async def test_hit_miss_and_expiry(cache: ResponseCache) -> None:
    assert await cache.get("a") is None
    await cache.set("a", b"answer", ttl_s=0.3)
    assert await cache.get("a") == b"answer"
    await asyncio.sleep(0.4)
    assert await cache.get("a") is None
    assert (cache.stats.hits, cache.stats.misses) == (1, 2)


@pytest.mark.anyio
async def test_concurrent_reads_get_their_own_entries(cache: ResponseCache) -> None:
    await cache.set("a", b"first", ttl_s=60)
    await cache.set("b", b"second", ttl_s=60)
    got = await asyncio.gather(cache.get("a"), cache.get("missing"), cache.get("b"))
    assert got == [b"first", None, b"second"]
    assert (cache.stats.hits, cache.stats.misses) == (2, 1)


@pytest.mark.anyio
async def test_redis_writes_land_without_being_awaited(redis_url: str) -> None:
    """``set`` only queues the write; it still reaches Redis (``close`` waits for it),
    each entry with its own TTL."""
    prefix = f"test:{uuid.uuid4().hex}:"
    writer = RedisResponseCache(redis_url, prefix=prefix)
    for index in range(50):
        await writer.set(f"k{index}", f"v{index}".encode(), ttl_s=60 if index % 2 else 0.2)
    await writer.close()
    reader = RedisResponseCache(redis_url, prefix=prefix)
    got = await asyncio.gather(*(reader.get(f"k{index}") for index in range(50)))
    assert got == [f"v{index}".encode() for index in range(50)]
    await asyncio.sleep(0.3)
    expired = await asyncio.gather(*(reader.get(f"k{index}") for index in range(4)))
    assert expired == [None, b"v1", None, b"v3"]
    await reader.close()


def test_keys_depend_on_version_and_every_input_byte() -> None:
    inputs = {"input": np.array([[1.0, 2.0]], dtype=np.float32)}
    key = cache_key("iris", 3, inputs)
    assert key == cache_key("iris", 3, {"input": inputs["input"].copy()})
    assert key != cache_key("iris", 4, inputs)
    assert key != cache_key("iris", 3, {"input": np.array([[1.0, 2.5]], dtype=np.float32)})
    assert key != cache_key("iris", 3, {"input": inputs["input"].astype(np.float64)})
    assert key != cache_key("iris", 3, {"input": inputs["input"].reshape(2, 1)})


def test_entries_round_trip_every_dtype() -> None:
    outputs = {
        "label": np.array([0, 2], dtype=np.int64),
        "probabilities": np.array([[0.9, 0.1], [0.2, 0.8]], dtype=np.float32),
        "text": np.array([b"hello", "wörld".encode()], dtype=np.object_),
        "flags": np.array([True, False]),
    }
    back = decode_outputs(encode_outputs(outputs))
    assert back.keys() == outputs.keys()
    for name, array in outputs.items():
        assert back[name].dtype == array.dtype
        np.testing.assert_array_equal(back[name], array)
    with pytest.raises(ValueError, match="not a servewell cache entry"):
        decode_outputs(b"junk")


@pytest.mark.anyio
async def test_memory_cache_keeps_to_its_byte_budget() -> None:
    cache = MemoryResponseCache(max_bytes=100)
    for index in range(10):
        await cache.set(f"k{index}", b"x" * 30, ttl_s=60)
    assert cache.size_bytes <= 100
    assert cache.stats.evictions == 7
    assert await cache.get("k9") == b"x" * 30  # the newest survive
    assert await cache.get("k0") is None


@pytest.mark.anyio
async def test_redis_cache_failure_is_a_miss_and_recovers(private_redis: PrivateRedis) -> None:
    cache = RedisResponseCache(private_redis.url, timeout_s=0.2, retry_interval_s=0.2)
    await cache.set("a", b"1", ttl_s=60)
    assert await cache.get("a") == b"1"
    private_redis.stop()
    assert await asyncio.wait_for(cache.get("a"), timeout=2) is None
    await cache.set("b", b"2", ttl_s=60)  # swallowed
    assert cache.stats.errors >= 1
    private_redis.start()
    await asyncio.sleep(0.3)
    await cache.set("c", b"3", ttl_s=60)
    assert await cache.get("c") == b"3"
    await cache.close()
