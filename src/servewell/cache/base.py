"""The ResponseCache protocol. A cache failure is a miss, never an error.

Entries are opaque bytes (the serving layer stores whole encoded answers); keys say
which model version and which request they answer (``cache.entry.cache_key``). An entry
written with a ``stale_ttl_s`` longer than its ``ttl_s`` stays readable through
``get_stale`` after it expires, until ``stale_ttl_s`` has passed (or it is evicted): the
``cache`` fallback's last good answer (stale-if-error).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass
class CacheStats:
    """Counts since start, for the metrics."""

    hits: int = 0
    misses: int = 0
    evictions: int = 0
    errors: int = 0
    skipped: int = 0
    """Writes not made because too many were still in flight."""


class ResponseCache(Protocol):
    stats: CacheStats

    async def get(self, key: str) -> bytes | None:
        """The entry stored under ``key``, or None on a miss (or when the backend is
        unreachable)."""

    async def set(self, key: str, value: bytes, ttl_s: float, stale_ttl_s: float = 0.0) -> None:
        """Store an entry, fresh for ``ttl_s`` and kept for ``get_stale`` for
        ``stale_ttl_s`` (when longer); failures are counted and swallowed."""

    async def get_stale(self, key: str) -> bytes | None:
        """The entry under ``key`` even if expired, while its stale time lasts; None
        otherwise. Not counted as a hit or a miss, and it refreshes nothing."""

    async def close(self) -> None: ...


class SyncResponseCache(ResponseCache, Protocol):
    """A response cache that also answers without awaiting (an in-process one): the
    server's fast lane serves hits from it inside the HTTP protocol, and a miss costs no
    coroutine. ``bootstrap`` decides whether the configured cache is one."""

    def peek(self, key: str) -> bytes | None:
        """The live entry under ``key``, without counting it or refreshing its recency."""

    def count_hit(self, key: str) -> None:
        """Count a hit on ``key`` (after :meth:`peek` found it) and refresh its recency."""

    def get_now(self, key: str) -> bytes | None:
        """:meth:`get` without a coroutine: counts a hit or a miss."""

    def set_now(self, key: str, value: bytes, ttl_s: float, stale_ttl_s: float = 0.0) -> None:
        """:meth:`set` without a coroutine."""
