"""The ResponseCache protocol. A cache failure is a miss, never an error.

Entries are opaque bytes (the serving layer stores whole encoded answers); keys say
which model version and which request they answer (``cache.entry.cache_key``).
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

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store an entry; failures are counted and swallowed."""

    async def close(self) -> None: ...
