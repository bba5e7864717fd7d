"""Token buckets in Redis: one atomic Lua script per check, one budget for every worker
and replica. The checks made during one turn of the event loop go to Redis together, in
one pipeline (``TurnBatcher``), and the checks of one turn on the same bucket are one
script call that takes up to that many tokens at one instant: each request still gets
exactly the decision it would have got alone, in the order it asked.

When Redis cannot be reached the configured policy decides (``fail_open``: allow, with a
warning; ``fail_closed``: refuse, which the server answers with 503), without waiting
longer than the socket timeout, and without asking Redis again for ``retry_interval_s``;
after that it simply tries again, so it recovers by itself.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Literal

from servewell.batching.turn import TurnBatcher
from servewell.core.rate import Decision, Rate, decide
from servewell.limits.base import RateLimiter
from servewell.redis_client import connect_redis

logger = logging.getLogger(__name__)

FailurePolicy = Literal["fail_open", "fail_closed"]

# A bucket's tokens now, refilled since it was last written, on Redis's own clock (so
# replicas with skewed clocks still share one bucket fairly): both scripts start with it.
_REFILL = """
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
"""
_TOKEN_BUCKET = (
    """
local capacity = tonumber(ARGV[1])
local refill_per_s = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
"""
    + _REFILL
    + """
local before = tokens
local granted = math.max(0, math.min(wanted, math.floor(tokens)))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / refill_per_s) + 1)
return {granted, tostring(before)}
"""
)
# Many tokens at once (a token rate: an LLM call's tokens), all or none, or, with
# ``force``, all of them whatever the bucket holds (down to ``-capacity``: a debt that
# refills). One call per script: token rates are checked once per LLM call.
_TAKE = (
    """
local capacity = tonumber(ARGV[1])
local refill_per_s = tonumber(ARGV[2])
local amount = tonumber(ARGV[3])
local force = tonumber(ARGV[4])
"""
    + _REFILL
    + """
local allowed = 0
if force == 1 or tokens >= amount then
  allowed = 1
  tokens = math.max(-capacity, tokens - amount)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil((capacity - tokens) / refill_per_s) + 1)
return {allowed, tostring(tokens)}
"""
)
# ``wanted`` requests at one instant, one token each: the first ``granted`` are allowed
# (what ``wanted`` calls of a one-token script would decide); ``before`` is the bucket
# after its refill, so every request's own remainder follows (``_split``).


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
        self._batcher: TurnBatcher[tuple[str, Rate], Any] | None = None
        self._sha: str | None = None
        self._take_sha: str | None = None
        self._no_script: type[Exception] = Exception
        self._down_until = 0.0

    async def acquire(self, bucket: str, rate: Rate) -> Decision:
        if time.monotonic() < self._down_until:
            return self._degraded(rate)
        batcher = self._require_batcher()
        try:
            result = await batcher.submit((self.prefix + bucket, rate))
            if isinstance(result, Exception):
                raise result
            allowed, tokens = result
        except Exception as exc:  # any Redis or socket failure: the policy decides
            return self._failed(exc, rate)
        return decide(rate, tokens, allowed)

    async def take(self, bucket: str, rate: Rate, amount: int, force: bool = False) -> Decision:
        if time.monotonic() < self._down_until:
            return self._degraded(rate)
        self._require_batcher()
        try:
            if self._take_sha is None:
                self._take_sha = await self._client.script_load(_TAKE)
            args = (rate.limit, rate.refill_per_s, amount, 1 if force else 0)
            try:
                reply = await self._client.evalsha(self._take_sha, 1, self.prefix + bucket, *args)
            except self._no_script:  # a restarted Redis forgot the script
                self._take_sha = await self._client.script_load(_TAKE)
                reply = await self._client.evalsha(self._take_sha, 1, self.prefix + bucket, *args)
        except Exception as exc:  # any Redis or socket failure: the policy decides
            return self._failed(exc, rate)
        return decide(rate, float(reply[1]), bool(int(reply[0])), cost=float(amount))

    def _failed(self, exc: Exception, rate: Rate) -> Decision:
        """Redis could not answer: the failure policy's decision, for a while."""
        if time.monotonic() >= self._down_until:  # one warning per outage, not per call
            logger.warning(
                "rate limiter: Redis unreachable (%s); applying %s for %.1f s",
                type(exc).__name__,
                self.failure_policy,
                self.retry_interval_s,
            )
        self._down_until = time.monotonic() + self.retry_interval_s
        return self._degraded(rate)

    async def close(self) -> None:
        if self._batcher is not None:
            await self._batcher.drain()
            self._batcher = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _require_batcher(self) -> TurnBatcher[tuple[str, Rate], Any]:
        if self._batcher is None:
            self._client, self._no_script = connect_redis(self.url, self.timeout_s)
            self._batcher = TurnBatcher(self._run_scripts)
        return self._batcher

    async def _run_scripts(self, calls: list[tuple[str, Rate]]) -> list[Any]:
        """One pipeline, one script call per bucket; a result is ``(allowed, tokens
        after)`` for each call, or the error Redis gave for its bucket."""
        groups: dict[tuple[str, Rate], list[int]] = {}
        for index, call in enumerate(calls):
            groups.setdefault(call, []).append(index)
        if self._sha is None:
            self._sha = await self._client.script_load(_TOKEN_BUCKET)
        replies = await self._pipeline(groups)
        if any(isinstance(reply, self._no_script) for reply in replies):
            # A restarted Redis has forgotten the script: load it again, once.
            self._sha = await self._client.script_load(_TOKEN_BUCKET)
            replies = await self._pipeline(groups)
        results: list[Any] = [None] * len(calls)
        for indexes, reply in zip(groups.values(), replies, strict=True):
            for index, result in zip(indexes, _split(reply, len(indexes)), strict=True):
                results[index] = result
        return results

    async def _pipeline(self, groups: dict[tuple[str, Rate], list[int]]) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for (key, rate), indexes in groups.items():
            pipe.evalsha(self._sha, 1, key, rate.limit, rate.refill_per_s, len(indexes))
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies

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


def _split(reply: Any, wanted: int) -> list[Any]:
    """Each of ``wanted`` requests' ``(allowed, tokens after)``, in order, from one script
    reply ``[granted, tokens before]``; an error stays the error for every one of them."""
    if isinstance(reply, Exception):
        return [reply] * wanted
    granted, before = int(reply[0]), float(reply[1])
    return [
        (True, before - (index + 1)) if index < granted else (False, before - granted)
        for index in range(wanted)
    ]


if TYPE_CHECKING:  # mypy holds the class to the protocol it is served as
    _as_protocol: type[RateLimiter] = RedisRateLimiter
