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
    options: dict[str, Any] = {}
    packed = _hiredis_connection(aioredis.Connection)
    if packed is not None and url.startswith("redis://"):  # TLS and sockets: as they are
        options["connection_class"] = packed
    client = aioredis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry_on_timeout=False,
        **options,
    )
    return client, NoScriptError


def _hiredis_connection(base: type[Any]) -> type[Any] | None:
    """redis-py's asyncio connection, packing commands with hiredis (C) instead of
    Python: the cache's batched commands carry dozens of arguments, and redis-py joins
    its buffer again for each (measured: a 93-argument script call 42 µs -> 6 µs).
    None without hiredis."""
    try:
        import hiredis
    except ImportError:
        return None

    class HiredisPackedConnection(base):  # type: ignore[misc]
        def pack_command(self, *args: Any) -> list[bytes]:
            words = args[0].split() if isinstance(args[0], str | bytes) else ()
            if len(words) > 1:  # "SCRIPT LOAD": two words, sent apart, as redis-py does
                args = (*words, *args[1:])
            try:
                return [hiredis.pack_command(args)]
            except TypeError:  # not str, bytes, int or float: redis-py says what is wrong
                return super().pack_command(*args)  # type: ignore[no-any-return]

    return HiredisPackedConnection
