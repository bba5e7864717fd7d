"""An in-process LRU cache with a TTL per entry and a byte budget.

Entries are bytes (never tracked by the garbage collector, so a few hundred thousand of
them cost full collections nothing). The byte budget counts what an entry really holds
in memory: its key and value objects (``sys.getsizeof``, headers included) plus the
entry's own structure (a tuple, its expiry float and the ordered dict's slot and node),
so the memory the cache holds stays near ``max_bytes`` even for small answers, whose
overhead is larger than their bytes (tests/cache/test_memory.py measures it).
An entry kept stale (``stale_ttl_s``) stays in the LRU order and the budget after it
expires, as any other: it costs one more float, and the oldest entries, stale or not,
make room first.
Besides the async ``ResponseCache`` calls it answers synchronously (``peek``,
``count_hit``, ``get_now``, ``set_now``), so the HTTP layer can serve a hit without
leaving the protocol, and a miss costs no coroutines.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from servewell.cache.base import CacheStats, SyncResponseCache

#: What one entry costs besides its key and value: the ``(value, expires, stale_until)``
#: tuple, the expiry float (the same object twice unless kept stale), and the
#: OrderedDict's share (hash slot and index, kept at most 2/3 full, plus its linked-list
#: node), measured with tracemalloc on CPython 3.11-3.13.
ENTRY_OVERHEAD_BYTES = sys.getsizeof((b"", 0.0, 0.0)) + sys.getsizeof(0.0) + 104
#: What keeping an entry stale adds: its own ``stale_until`` float.
STALE_OVERHEAD_BYTES = sys.getsizeof(0.0)

#: value, expires, stale_until (``is`` expires when not kept stale)
_Entry = tuple[bytes, float, float]


def entry_cost(key: str, value: bytes, kept_stale: bool = False) -> int:
    """The bytes an entry holds in memory."""
    stale = STALE_OVERHEAD_BYTES if kept_stale else 0
    return sys.getsizeof(key) + sys.getsizeof(value) + ENTRY_OVERHEAD_BYTES + stale


class MemoryResponseCache:
    def __init__(
        self, max_bytes: int = 64 * 1024 * 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_bytes = max_bytes
        self.clock = clock
        self.stats = CacheStats()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._size_bytes = 0
        self._lock = threading.Lock()

    @property
    def size_bytes(self) -> int:
        return self._size_bytes

    async def get(self, key: str) -> bytes | None:
        return self.get_now(key)

    def get_now(self, key: str) -> bytes | None:
        """``get`` without a coroutine (this cache never waits)."""
        value = self.peek(key)
        if value is None:
            self.stats.misses += 1
            return None
        self.count_hit(key)
        return value

    def peek(self, key: str) -> bytes | None:
        """The live entry under ``key``, without counting or refreshing it."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= self.clock():
            if entry[2] is entry[1] or entry[2] <= self.clock():  # not kept stale
                self._drop(key, entry)
            return None
        return entry[0]

    async def get_stale(self, key: str) -> bytes | None:
        return self.peek_stale(key)

    def peek_stale(self, key: str) -> bytes | None:
        """The entry under ``key``, expired or not, while its stale time lasts."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[2] <= self.clock():
            self._drop(key, entry)
            return None
        return entry[0]

    def _drop(self, key: str, entry: _Entry) -> None:
        with self._lock:
            if self._entries.get(key) is entry:
                self._remove(key)

    def count_hit(self, key: str) -> None:
        """Count a hit on ``key`` and make it the most recently used."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
            self.stats.hits += 1

    async def set(self, key: str, value: bytes, ttl_s: float, stale_ttl_s: float = 0.0) -> None:
        self.set_now(key, value, ttl_s, stale_ttl_s)

    def set_now(self, key: str, value: bytes, ttl_s: float, stale_ttl_s: float = 0.0) -> None:
        """``set`` without a coroutine."""
        kept_stale = stale_ttl_s > ttl_s
        cost = entry_cost(key, value, kept_stale)
        if cost > self.max_bytes:
            return  # larger than the whole budget: never worth evicting everything for
        now = self.clock()
        expires = now + ttl_s
        with self._lock:
            if key in self._entries:
                self._remove(key)
            self._entries[key] = (value, expires, now + stale_ttl_s if kept_stale else expires)
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
        value, expires, stale_until = self._entries.pop(key)
        self._size_bytes -= entry_cost(key, value, stale_until is not expires)


if TYPE_CHECKING:  # mypy holds the class to the protocol it is served as
    _as_protocol: type[SyncResponseCache] = MemoryResponseCache
