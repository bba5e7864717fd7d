"""An in-process LRU cache with a TTL per entry and a byte budget.

Entries are kept encoded (``cache.entry``), not as the arrays themselves: a container
of arrays is tracked by the garbage collector, and with a few hundred thousand entries
every full collection walks them all (measured: 27 ms pauses of the event loop at 300k
entries), while bytes are never tracked. Encoding and decoding cost ~2 us a request.
An entry costs its key's length plus its encoded bytes.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from servewell.cache.base import Array, CacheStats
from servewell.cache.entry import decode_outputs, encode_outputs


class MemoryResponseCache:
    def __init__(
        self, max_bytes: int = 64 * 1024 * 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_bytes = max_bytes
        self.clock = clock
        self.stats = CacheStats()
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._size_bytes = 0
        self._lock = threading.Lock()

    @property
    def size_bytes(self) -> int:
        return self._size_bytes

    async def get(self, key: str) -> dict[str, Array] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.stats.misses += 1
                return None
            value, expires_at = entry
            if expires_at <= self.clock():
                self._remove(key)
                self.stats.misses += 1
                return None
            self._entries.move_to_end(key)
            self.stats.hits += 1
        outputs = decode_outputs(value)
        for array in outputs.values():
            array.setflags(write=False)  # as the protocol promises (text arrays are fresh)
        return outputs

    async def set(self, key: str, outputs: Mapping[str, Array], ttl_s: float) -> None:
        value = encode_outputs(outputs)
        cost = len(key) + len(value)
        if cost > self.max_bytes:
            return  # larger than the whole budget: never worth evicting everything for
        with self._lock:
            if key in self._entries:
                self._remove(key)
            self._entries[key] = (value, self.clock() + ttl_s)
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
        value, _ = self._entries.pop(key)
        self._size_bytes -= len(key) + len(value)
