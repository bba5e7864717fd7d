"""Token buckets in this process: zero set-up, one budget per worker."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from servewell.core.rate import Decision, Rate, decide
from servewell.limits.base import SyncRateLimiter


class MemoryRateLimiter:
    """In-process token buckets; the least recently used are forgotten past ``max_buckets``
    (a forgotten bucket comes back full, which only ever errs towards allowing)."""

    def __init__(
        self, max_buckets: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_buckets = max_buckets
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    async def acquire(self, bucket: str, rate: Rate) -> Decision:
        return self.acquire_now(bucket, rate)

    def acquire_now(self, bucket: str, rate: Rate) -> Decision:
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.pop(bucket, (float(rate.limit), now))
            tokens = min(float(rate.limit), tokens + (now - last) * rate.refill_per_s)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[bucket] = (tokens, now)
            if len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)
        return decide(rate, tokens, allowed)

    async def take(self, bucket: str, rate: Rate, amount: int, force: bool = False) -> Decision:
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.pop(bucket, (float(rate.limit), now))
            tokens = min(float(rate.limit), tokens + (now - last) * rate.refill_per_s)
            allowed = force or tokens >= amount
            if allowed:
                tokens = max(-float(rate.limit), tokens - amount)
            self._buckets[bucket] = (tokens, now)
            if len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)
        return decide(rate, tokens, allowed, cost=float(amount))

    async def close(self) -> None:
        with self._lock:
            self._buckets.clear()


if TYPE_CHECKING:  # mypy holds the class to the protocol it is served as
    _as_protocol: type[SyncRateLimiter] = MemoryRateLimiter
