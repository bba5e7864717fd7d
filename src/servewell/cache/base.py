"""The ResponseCache protocol. A cache failure is a miss, never an error.

Entries are a model's raw outputs (name -> array), whatever protocol asked: a backend
that keeps them in memory stores the arrays themselves, one that sends them elsewhere
encodes them (``cache.entry``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

Array = np.ndarray[Any, Any]


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

    async def get(self, key: str) -> Mapping[str, Array] | None:
        """The outputs stored under ``key`` (read-only: shared by every hit), or None on a
        miss (or when the backend is unreachable, or the entry is broken)."""

    async def set(self, key: str, outputs: Mapping[str, Array], ttl_s: float) -> None:
        """Store an entry; failures are counted and swallowed."""

    async def close(self) -> None: ...
