"""connect_redis packs commands with hiredis: the same bytes redis-py would send, and a
real Redis understands them."""

from __future__ import annotations

import uuid

import pytest
from redis.asyncio.connection import Connection

from servewell.redis_client import connect_redis


def test_commands_pack_to_the_bytes_redis_py_sends(redis_url: str) -> None:
    client, _ = connect_redis(redis_url, 1.0)
    packed_class = client.connection_pool.connection_class
    assert packed_class is not Connection
    ours, theirs = packed_class(), Connection()
    commands = [
        ("MGET", "servewell:cache:k1", "servewell:cache:ké"),
        ("EVALSHA", "a" * 40, 2, "k1", "k2", b"\x00\xffvalue", 30_000, 1 / 3, 10**20),
        ("SCRIPT LOAD", "return 1"),
        (b"CONFIG GET", b"maxmemory"),
    ]
    for command in commands:
        assert b"".join(ours.pack_command(*command)) == b"".join(theirs.pack_command(*command))
    with pytest.raises(Exception, match="Invalid input of type: 'bool'"):
        ours.pack_command("SET", "k", True)


@pytest.mark.anyio
async def test_a_real_redis_understands_them(redis_url: str) -> None:
    client, _ = connect_redis(redis_url, 1.0)
    key = f"test:{uuid.uuid4().hex}"
    try:
        await client.set(key, "é", px=60_000)
        pipe = client.pipeline(transaction=False)
        pipe.get(key)
        pipe.eval("return ARGV[1] .. ARGV[2]", 0, 1 / 4, 7)
        assert await pipe.execute() == ["é".encode(), b"0.257"]
    finally:
        await client.delete(key)
        await client.aclose()
