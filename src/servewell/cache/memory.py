"""An in-process LRU cache with a TTL per entry and a byte budget.

It keeps the output arrays themselves (copied once, made read-only, since every hit
shares them): no encoding on a write, no decoding on a hit. An entry costs its key's
length plus its arrays' bytes (``nbytes``; for text, the bytes of every item).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from servewell.cache.base import Array, CacheStats

Entry = dict[str, Array]


class MemoryResponseCache:
    def __init__(
        self, max_bytes: int = 64 * 1024 * 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_bytes = max_bytes
        self.clock = clock
        self.stats = CacheStats()
        self._entries: OrderedDict[str, tuple[Entry, int, float]] = OrderedDict()
        self._size_bytes = 0
        self._lock = threading.Lock()

    @property
    def size_bytes(self) -> int:
        return self._size_bytes

    async def get(self, key: str) -> Entry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.stats.misses += 1
                return None
            value, _, expires_at = entry
            if expires_at <= self.clock():
                self._remove(key)
                self.stats.misses += 1
                return None
            self._entries.move_to_end(key)
            self.stats.hits += 1
            return value

    async def set(self, key: str, outputs: Mapping[str, Array], ttl_s: float) -> None:
        value: Entry = {}
        cost = len(key)
        for name, array in outputs.items():
            value[name] = _frozen(array)
            cost += _size_bytes(array)
        if cost > self.max_bytes:
            return  # larger than the whole budget: never worth evicting everything for
        with self._lock:
            if key in self._entries:
                self._remove(key)
            self._entries[key] = (value, cost, self.clock() + ttl_s)
            self._size_bytes += cost
            while self._size_bytes > self.max_bytes:
                oldest = next(iter(self._entries))
                self._remove(oldest)
                self.stats.evictions += 1

    async def close(self) -> None:
        with self._lock:
            self._entries.clear()
            self._size_bytes = 0

    def _remove(self, key: str) -> None:
        _, cost, _ = self._entries.pop(key)
        self._size_bytes -= cost


def _frozen(array: Array) -> Array:
    """A read-only copy: a view would keep its whole batch alive and could change."""
    copy = array.copy()
    copy.setflags(write=False)
    return copy


def _size_bytes(array: Array) -> int:
    if array.dtype.kind != "O":
        return int(array.nbytes)
    return sum(len(item) if isinstance(item, bytes | str) else 8 for item in array.flat)
