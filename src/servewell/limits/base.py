"""The RateLimiter protocol: every backend takes one token (or, for token rates, many)
from a named bucket."""

from __future__ import annotations

from typing import Protocol

from servewell.core.rate import Decision, Rate


class RateLimiter(Protocol):
    """Token buckets by name ("key:ci-bot", "ip:10.0.0.1", "key:ci-bot:model:iris")."""

    async def acquire(self, bucket: str, rate: Rate) -> Decision:
        """Take one token from ``bucket`` if it has one; never raises for backend trouble."""

    async def take(self, bucket: str, rate: Rate, amount: int, force: bool = False) -> Decision:
        """Take ``amount`` tokens at once from ``bucket`` if it holds that many (a rate of
        tokens per minute: an LLM call's); with ``force``, take them whatever it holds,
        leaving it in debt (down to ``-rate.limit``) that refills like any token. Never
        raises for backend trouble."""

    async def close(self) -> None:
        """Release connections."""


class SyncRateLimiter(RateLimiter, Protocol):
    """A rate limiter that also decides without awaiting (an in-process one); ``bootstrap``
    decides whether the configured limiter is one."""

    def acquire_now(self, bucket: str, rate: Rate) -> Decision:
        """:meth:`acquire` without a coroutine."""
