"""The remote models' HTTP client beside aiohttp's, in one process, against the scripted
upstream (issue #18): CPU a call and latency, at 64 calls in flight.

    .venv/bin/python bench/upstream_client.py                  # ~1 minute
    .venv/bin/python bench/upstream_client.py --latency-ms 0   # the calls' own cost alone

``serving/http_pool.HttpPool`` (what ``serving/upstream.py`` sends through) and an
``aiohttp.ClientSession`` set up as servewell's client was before it (one connector of
64, no decompression, no auto headers, a per-call timeout), each posting the same chat
body to ``tests/upstreams/scripted_openai.py`` (its own process, on the load core) from
this process pinned to the server core, on uvloop as a server runs. aiohttp is not a
dependency of servewell: install it to compare (``pip install aiohttp``), else its rows
are skipped. Rounds alternate the two; medians of the rounds are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from run import LOAD_CORE, SERVER_CORE

from scripted_upstream import scripted_upstream
from servewell.serving.http_pool import HttpPool

PATH = "/v1/chat/completions"
BODY = json.dumps({"model": "m1", "messages": [{"role": "user", "content": "hello there"}]})
HEADERS = {"content-type": "application/json", "authorization": "Bearer bench"}


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(
    call: Callable[[], Awaitable[Any]], seconds: float, concurrency: int
) -> dict[str, float]:
    """CPU a call, calls a second, p50 and p99 (ms) over ``seconds`` after a second's warm-up."""
    latencies: list[float] = []
    begin = time.perf_counter()
    measure_from, end = begin + 1.0, begin + 1.0 + seconds
    cpu_from = [0.0]

    async def connection() -> None:
        while (sent := time.perf_counter()) < end:
            await call()
            if sent >= measure_from:
                latencies.append(time.perf_counter() - sent)

    async def mark() -> None:
        await asyncio.sleep(1.0)
        cpu_from[0] = cpu_s()

    await asyncio.gather(mark(), *(connection() for _ in range(concurrency)))
    spent = cpu_s() - cpu_from[0]
    latencies.sort()
    count = len(latencies)
    return {
        "cpu_us": spent / count * 1e6,
        "per_s": count / seconds,
        "p50_ms": latencies[count // 2] * 1000,
        "p99_ms": latencies[int(count * 0.99)] * 1000,
    }


async def pool_point(url: str, seconds: float, concurrency: int) -> dict[str, float]:
    pool = HttpPool(
        url,
        HEADERS,
        max_connections=concurrency,
        max_body_bytes=16 << 20,
        connect_timeout_s=5.0,
        read_timeout_s=30.0,
    )
    body = BODY.encode()
    try:
        return await measure(
            lambda: pool.post(PATH, body, time.monotonic() + 30), seconds, concurrency
        )
    finally:
        await pool.close()


async def aiohttp_point(url: str, seconds: float, concurrency: int) -> dict[str, float]:
    import aiohttp
    from yarl import URL

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency, limit_per_host=0),
        headers=HEADERS,
        auto_decompress=False,
        trust_env=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
    )
    target, body = URL(url + PATH), BODY.encode()
    timeout = aiohttp.ClientTimeout(sock_connect=5, sock_read=30)

    async def call() -> bytes:
        response = await session.post(target, data=body, timeout=timeout, allow_redirects=False)
        content = await response.read()
        response.release()
        return content

    try:
        return await measure(call, seconds, concurrency)
    finally:
        await session.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    try:
        import aiohttp  # noqa: F401

        clients = {"http_pool": pool_point, "aiohttp": aiohttp_point}
    except ImportError:
        print("aiohttp is not installed: its rows are skipped (pip install aiohttp)")
        clients = {"http_pool": pool_point}
    os.sched_setaffinity(0, {int(SERVER_CORE)})
    figures: dict[str, list[dict[str, float]]] = {name: [] for name in clients}
    with scripted_upstream("--latency-ms", str(args.latency_ms)) as upstream:
        pid = upstream_pid()
        if pid is not None:
            os.sched_setaffinity(pid, {int(LOAD_CORE)})
        for round_number in range(args.rounds):
            order = list(clients) if round_number % 2 == 0 else list(reversed(clients))
            for name in order:
                point = uvloop.run(clients[name](upstream.url, args.seconds, args.concurrency))
                figures[name].append(point)
                print(f"round {round_number + 1} {name:10s} " + _line(point), flush=True)
    print(
        f"\nmedians of {args.rounds} rounds, c={args.concurrency}, upstream {args.latency_ms} ms:"
    )
    for name, points in figures.items():
        medians = {key: statistics.median(point[key] for point in points) for key in points[0]}
        print(f"  {name:10s} " + _line(medians))


def upstream_pid() -> int | None:
    """The scripted upstream's process (this process's child)."""
    children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
    found = children.read_text().split() if children.exists() else []
    return int(found[0]) if found else None


def _line(point: dict[str, float]) -> str:
    return (
        f"{point['cpu_us']:7.1f} us CPU a call  {point['per_s']:7.0f}/s  "
        f"p50 {point['p50_ms']:7.2f} ms  p99 {point['p99_ms']:7.2f} ms"
    )


if __name__ == "__main__":
    main()
