"""A response cache in Redis, shared by every worker and replica; Redis expires entries."""

from __future__ import annotations

import logging
import time
from typing import Any

from servewell.cache.base import CacheStats
from servewell.errors import MissingDependency

logger = logging.getLogger(__name__)


class RedisResponseCache:
    """Entries under ``prefix + key`` with a TTL. Unreachable Redis reads as a miss, and is
    not asked again for ``retry_interval_s`` so a dead cache costs no latency."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "servewell:cache:",
        timeout_s: float = 0.1,
        retry_interval_s: float = 1.0,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.retry_interval_s = retry_interval_s
        self.stats = CacheStats()
        self._client: Any = None
        self._down_until = 0.0

    async def get(self, key: str) -> bytes | None:
        client = self._available()
        if client is None:
            self.stats.misses += 1
            return None
        try:
            value = await client.get(self.prefix + key)
        except Exception as exc:
            self._failed(exc)
            self.stats.misses += 1
            return None
        if value is None:
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return bytes(value)

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        client = self._available()
        if client is None:
            return
        try:
            await client.set(self.prefix + key, value, px=max(1, int(ttl_s * 1000)))
        except Exception as exc:
            self._failed(exc)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _available(self) -> Any:
        if time.monotonic() < self._down_until:
            return None
        if self._client is None:
            try:
                import redis.asyncio as aioredis
            except ImportError as exc:
                raise MissingDependency("redis", "redis") from exc
            self._client = aioredis.Redis.from_url(
                self.url,
                socket_timeout=self.timeout_s,
                socket_connect_timeout=self.timeout_s,
                retry_on_timeout=False,
            )
        return self._client

    def _failed(self, exc: Exception) -> None:
        self.stats.errors += 1
        self._down_until = time.monotonic() + self.retry_interval_s
        logger.warning("response cache: Redis unreachable (%s); serving misses", type(exc).__name__)
