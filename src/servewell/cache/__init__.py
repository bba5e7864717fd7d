"""Response caching: in-process LRU (default) or Redis (shared by replicas)."""

from servewell.cache.base import CacheStats, ResponseCache, SyncResponseCache
from servewell.cache.entry import cache_key
from servewell.cache.memory import MemoryResponseCache
from servewell.cache.redis import RedisResponseCache

__all__ = [
    "CacheStats",
    "MemoryResponseCache",
    "RedisResponseCache",
    "ResponseCache",
    "SyncResponseCache",
    "cache_key",
]
