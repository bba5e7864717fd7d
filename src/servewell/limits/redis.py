"""Token buckets in Redis: one atomic Lua script per check, one budget for every worker
and replica.

When Redis cannot be reached the configured policy decides (``fail_open``: allow, with a
warning; ``fail_closed``: refuse, which the server answers with 503), without waiting
longer than the socket timeout, and without asking Redis again for ``retry_interval_s``;
after that it simply tries again, so it recovers by itself.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Literal

from servewell.core.rate import Decision, Rate, decide
from servewell.errors import MissingDependency

logger = logging.getLogger(__name__)

FailurePolicy = Literal["fail_open", "fail_closed"]

# Redis's own clock, so replicas with skewed clocks still share one bucket fairly.
_TOKEN_BUCKET = """
local capacity = tonumber(ARGV[1])
local refill_per_s = tonumber(ARGV[2])
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then
  tokens = capacity
  ts = now
end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * refill_per_s)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / refill_per_s) + 1)
return {allowed, tostring(tokens)}
"""


class RedisRateLimiter:
    """Shared token buckets in Redis."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "servewell:rl:",
        failure_policy: FailurePolicy = "fail_open",
        timeout_s: float = 0.25,
        retry_interval_s: float = 1.0,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.failure_policy = failure_policy
        self.timeout_s = timeout_s
        self.retry_interval_s = retry_interval_s
        self._client: Any = None
        self._script: Any = None
        self._down_until = 0.0

    async def acquire(self, bucket: str, rate: Rate) -> Decision:
        if time.monotonic() < self._down_until:
            return self._degraded(rate)
        script = self._require_script()
        try:
            allowed, tokens = await script(
                keys=[self.prefix + bucket], args=[rate.limit, rate.refill_per_s]
            )
        except Exception as exc:  # any Redis or socket failure: the policy decides
            self._down_until = time.monotonic() + self.retry_interval_s
            logger.warning(
                "rate limiter: Redis unreachable (%s); applying %s for %.1f s",
                type(exc).__name__,
                self.failure_policy,
                self.retry_interval_s,
            )
            return self._degraded(rate)
        return decide(rate, float(tokens), bool(int(allowed)))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _require_script(self) -> Any:
        if self._script is None:
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
            self._script = self._client.register_script(_TOKEN_BUCKET)
        return self._script

    def _degraded(self, rate: Rate) -> Decision:
        allowed = self.failure_policy == "fail_open"
        return Decision(
            allowed=allowed,
            limit=rate.limit,
            remaining=0,
            reset_s=0.0,
            retry_after_s=0.0 if allowed else self.retry_interval_s,
            degraded=True,
        )
