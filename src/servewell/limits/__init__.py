"""Rate limits: token buckets in-process (default) or in Redis (shared by replicas)."""

from servewell.core.rate import Decision, Rate
from servewell.limits.base import RateLimiter, SyncRateLimiter
from servewell.limits.memory import MemoryRateLimiter
from servewell.limits.redis import RedisRateLimiter

__all__ = [
    "Decision",
    "MemoryRateLimiter",
    "Rate",
    "RateLimiter",
    "RedisRateLimiter",
    "SyncRateLimiter",
]
