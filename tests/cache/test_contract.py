"""Every response cache passes the same suite; failures degrade to misses."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

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


def _out(value: float) -> dict[str, np.ndarray[Any, Any]]:
    return {"y": np.array([[value, 1.0]], dtype=np.float32), "label": np.array([1])}


def _value(entry: Mapping[str, np.ndarray[Any, Any]] | None) -> float | None:
    return None if entry is None else float(entry["y"][0, 0])


@pytest.mark.anyio
async def test_hit_miss_and_expiry(cache: ResponseCache) -> None:
    assert await cache.get("a") is None
    await cache.set("a", _out(7.0), ttl_s=0.3)
    entry = await cache.get("a")
    assert entry is not None
    assert entry.keys() == {"y", "label"}
    np.testing.assert_array_equal(entry["y"], _out(7.0)["y"])
    assert entry["label"].dtype == np.int64
    await asyncio.sleep(0.4)
    assert await cache.get("a") is None
    assert (cache.stats.hits, cache.stats.misses) == (1, 2)


@pytest.mark.anyio
async def test_entries_are_copies_and_read_only(cache: ResponseCache) -> None:
    """A hit is shared by every later hit: writing the original after storing it, or
    the entry itself, must never change what the cache answers."""
    outputs = _out(1.0)
    await cache.set("a", outputs, ttl_s=60)
    outputs["y"][0, 0] = 99.0
    entry = await cache.get("a")
    assert _value(entry) == 1.0
    assert entry is not None
    with pytest.raises(ValueError, match="read-only"):
        entry["y"][0, 0] = 5.0


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


@pytest.mark.anyio
async def test_a_broken_redis_entry_is_a_miss(redis_url: str) -> None:
    import redis.asyncio as aioredis

    prefix = f"test:{uuid.uuid4().hex}:"
    client = aioredis.Redis.from_url(redis_url)
    await client.set(prefix + "a", b"junk", px=60_000)
    await client.aclose()
    cache = RedisResponseCache(redis_url, prefix=prefix)
    assert await cache.get("a") is None
    assert (cache.stats.hits, cache.stats.misses) == (0, 1)
    await cache.close()


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
    probe = MemoryResponseCache()
    await probe.set("k0", {"x": np.zeros(30, dtype=np.uint8)}, ttl_s=60)
    entry_bytes = probe.size_bytes  # key + encoded entry
    cache = MemoryResponseCache(max_bytes=3 * entry_bytes + entry_bytes // 2)
    for index in range(10):  # three fit
        await cache.set(f"k{index}", {"x": np.full(30, index, dtype=np.uint8)}, ttl_s=60)
    assert cache.size_bytes == 3 * entry_bytes
    assert cache.stats.evictions == 7
    newest = await cache.get("k9")  # the newest survive
    assert newest is not None
    assert newest["x"].tolist() == [9] * 30
    assert await cache.get("k0") is None
    await cache.set("big", {"x": np.zeros(4 * entry_bytes, dtype=np.uint8)}, ttl_s=60)
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
