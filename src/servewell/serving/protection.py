"""What protects a server's models, held together for one lifecycle: the guard (keys,
scopes, rate limits), the lockout of addresses that fail to authenticate, the response
cache and the output filter rules."""

from __future__ import annotations

from dataclasses import dataclass

from servewell.limits import RateLimiter
from servewell.serving.ended_sessions import EndedSessions
from servewell.serving.guard import Guard
from servewell.serving.keyring import KeyRing
from servewell.serving.lockout import Lockout
from servewell.serving.response_cache import ResponseCacheLayer
from servewell.settings import OutputFilterSettings, Settings


@dataclass
class Protection:
    guard: Guard
    keyring: KeyRing | None = None
    limiter: RateLimiter | None = None
    lockout: Lockout | None = None
    cache: ResponseCacheLayer | None = None
    settings: Settings | None = None
    """Where each model's output filter rule is read (``Settings.model``); None: no rules."""
    ended_sessions: EndedSessions | None = None
    """Signed-out dashboard sessions (with keys on; None with authentication off)."""

    async def start(self) -> None:
        if self.keyring is not None:
            await self.keyring.start()
        if self.ended_sessions is not None:
            await self.ended_sessions.start()

    async def stop(self) -> None:
        if self.keyring is not None:
            await self.keyring.stop()
        if self.ended_sessions is not None:
            await self.ended_sessions.stop()
        if self.limiter is not None:
            await self.limiter.close()
        if self.lockout is not None and self.lockout.limiter is not self.limiter:
            await self.lockout.limiter.close()
        if self.cache is not None:
            await self.cache.cache.close()

    def filter_for(self, model: str) -> OutputFilterSettings | None:
        return self.settings.model(model).output_filters if self.settings is not None else None
