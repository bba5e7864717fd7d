"""A response cache in Redis, shared by every worker and replica; Redis expires entries.

An entry kept stale (``stale_ttl_s``, for the ``cache`` fallback) is a second copy under
``prefix + "stale:" + key`` with the longer TTL, written in the same script call: the
fresh key's reads stay one ``MGET`` of what they always were, and Redis (its
``maxmemory`` policy) bounds both copies.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from servewell.batching.turn import TurnBatcher
from servewell.cache.base import CacheStats, ResponseCache
from servewell.redis_client import connect_redis

logger = logging.getLogger(__name__)

#: What a stale copy's key adds after the prefix (model names never hold ':').
STALE = "stale:"

#: (Redis key, value to write or None to read, TTL in ms)
_Op = tuple[str, bytes | None, int]

#: Every entry of a batch, each with its own TTL: ARGV = value, ttl_ms, value, ttl_ms, ...
_SET_ALL = """
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], ARGV[2 * i - 1], 'PX', ARGV[2 * i])
end
return #KEYS
"""


class RedisResponseCache:
    """Entries under ``prefix + key`` with a TTL. Unreachable Redis reads as a miss, and is
    not asked again for ``retry_interval_s`` so a dead cache costs no latency.

    The reads and writes of one event-loop turn go to Redis together, in one pipeline:
    one script call that writes them all (each with its own TTL), then one ``MGET``. A
    write is queued and not waited for (its caller has its answer already); at most
    ``max_pending_writes`` are in flight, past that a write is skipped
    (``stats.skipped``): the entry is simply computed again.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "servewell:cache:",
        timeout_s: float = 0.1,
        retry_interval_s: float = 1.0,
        max_pending_writes: int = 4096,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.retry_interval_s = retry_interval_s
        self.max_pending_writes = max_pending_writes
        self.stats = CacheStats()
        self._client: Any = None
        self._batcher: TurnBatcher[_Op, bytes | None] | None = None
        self._sha: str | None = None
        self._no_script: type[Exception] = Exception
        self._pending_writes = 0
        self._down_until = 0.0

    async def get(self, key: str) -> bytes | None:
        batcher = self._available()
        value = None if batcher is None else await batcher.submit((self.prefix + key, None, 0))
        if value is None:
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return value

    async def set(self, key: str, value: bytes, ttl_s: float, stale_ttl_s: float = 0.0) -> None:
        batcher = self._available()
        if batcher is None:
            return
        if self._pending_writes >= self.max_pending_writes:
            self.stats.skipped += 1
            return
        self._pending_writes += 1
        batcher.push((self.prefix + key, value, _ms(ttl_s)))
        if stale_ttl_s > ttl_s:
            self._pending_writes += 1
            batcher.push((self.prefix + STALE + key, value, _ms(stale_ttl_s)))

    async def get_stale(self, key: str) -> bytes | None:
        batcher = self._available()
        return (
            None if batcher is None else await batcher.submit((self.prefix + STALE + key, None, 0))
        )

    async def close(self) -> None:
        if self._batcher is not None:
            await self._batcher.drain()  # queued writes land before the client goes
            self._batcher = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _available(self) -> TurnBatcher[_Op, bytes | None] | None:
        if time.monotonic() < self._down_until:
            return None
        if self._batcher is None:
            self._client, self._no_script = connect_redis(self.url, self.timeout_s)
            self._batcher = TurnBatcher(self._run)
        return self._batcher

    async def _run(self, ops: list[_Op]) -> list[bytes | None]:
        """One pipeline for the batch. Never raises: a failure is counted and every read
        of the batch is a miss."""
        try:
            return await self._run_batch(ops)
        finally:  # the batch's writes are done (or failed): no longer in flight
            self._pending_writes -= sum(1 for _, value, _ in ops if value is not None)

    async def _run_batch(self, ops: list[_Op]) -> list[bytes | None]:
        results: list[bytes | None] = [None] * len(ops)
        try:
            if self._sha is None:
                self._sha = await self._client.script_load(_SET_ALL)
            replies = await self._pipeline(ops)
            if replies and isinstance(replies[0], self._no_script):
                # A restarted Redis has forgotten the script: load it again, once.
                self._sha = await self._client.script_load(_SET_ALL)
                replies = await self._pipeline(ops)
        except Exception as exc:
            self._failed(exc)
            return results
        errors = [reply for reply in replies if isinstance(reply, Exception)]
        if errors:
            self._failed(errors[0])
        reads = [index for index, (_, value, _) in enumerate(ops) if value is None]
        if reads and not isinstance(replies[-1], Exception):
            for index, value in zip(reads, replies[-1], strict=True):
                results[index] = None if value is None else bytes(value)
        return results

    async def _pipeline(self, ops: list[_Op]) -> list[Any]:
        """The writes as one script call (first), the reads as one MGET (last)."""
        pipe = self._client.pipeline(transaction=False)
        writes = [(key, value, ttl_ms) for key, value, ttl_ms in ops if value is not None]
        if writes:
            args = [part for _, value, ttl_ms in writes for part in (value, ttl_ms)]
            pipe.evalsha(self._sha, len(writes), *(key for key, _, _ in writes), *args)
        reads = [key for key, value, _ in ops if value is None]
        if reads:
            pipe.mget(reads)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies

    def _failed(self, exc: Exception) -> None:
        self.stats.errors += 1
        if time.monotonic() >= self._down_until:  # one warning per outage, not per call
            logger.warning(
                "response cache: Redis unreachable (%s); serving misses", type(exc).__name__
            )
        self._down_until = time.monotonic() + self.retry_interval_s


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


if TYPE_CHECKING:  # mypy holds the class to the protocol it is served as
    _as_protocol: type[ResponseCache] = RedisResponseCache
