"""The one way servewell's Redis backends (response cache, rate limiter) open a client."""

from __future__ import annotations

from typing import Any

from servewell.errors import MissingDependency


def connect_redis(url: str, timeout_s: float) -> tuple[Any, type[Exception]]:
    """An asyncio Redis client that gives up after ``timeout_s`` (never retrying a
    timeout: the caller's failure policy decides), and redis-py's NoScriptError, which
    says a restarted Redis forgot a loaded script. Connects lazily, on first use."""
    try:
        import redis.asyncio as aioredis
        from redis.exceptions import NoScriptError
    except ImportError as exc:
        raise MissingDependency("redis", "redis") from exc
    client = aioredis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry_on_timeout=False,
    )
    return client, NoScriptError
