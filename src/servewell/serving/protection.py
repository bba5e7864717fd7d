"""What protects a server's models, held together for one lifecycle: the guard (keys,
scopes, rate limits), the response cache and the output filter rules."""

from __future__ import annotations

from dataclasses import dataclass, field

from servewell.limits import RateLimiter
from servewell.serving.guard import Guard
from servewell.serving.keyring import KeyRing
from servewell.serving.response_cache import ResponseCacheLayer
from servewell.settings import OutputFilterSettings


@dataclass
class Protection:
    guard: Guard
    keyring: KeyRing | None = None
    limiter: RateLimiter | None = None
    cache: ResponseCacheLayer | None = None
    output_filters: dict[str, OutputFilterSettings] = field(default_factory=dict)

    async def start(self) -> None:
        if self.keyring is not None:
            await self.keyring.start()

    async def stop(self) -> None:
        if self.keyring is not None:
            await self.keyring.stop()
        if self.limiter is not None:
            await self.limiter.close()
        if self.cache is not None:
            await self.cache.cache.close()
