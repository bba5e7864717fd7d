"""The load side of ``bench/llm.py``: one closed-loop point against one OpenAI-compatible
``/v1/chat/completions``, printed as one JSON line. ``bench/llm.py`` runs it in its own
process on the load core:

    python bench/llm_client.py URL MODEL SECONDS CONCURRENCY [--stream] [--key KEY]
    python bench/llm_client.py UPSTREAM_URL MODEL SECONDS CONCURRENCY --alone

Non-streaming points are servewell's own load driver (``servewell.loadtest``: prepared
requests on keep-alive asyncio connections, latencies in its 1 % histogram). A streaming
point needs the time of the first token, which that driver does not read, so it has a
small loop of its own on the same pieces (``Target``, ``encode_request``,
``LatencyHistogram``): per request the time until the first chunk that carries text
(``"content":"<something>``) and until the stream's end. ``--alone`` is servewell's
upstream client (``serving/upstream.py``) called in this process, without a server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from typing import Any

import numpy as np

from servewell.loadtest.bodies import build_requests
from servewell.loadtest.client import Target, encode_request
from servewell.loadtest.run import Plan, run_load_test
from servewell.loadtest.schedule import Step
from servewell.loadtest.stats import LatencyHistogram

CHAT_PATH = "/v1/chat/completions"
PROMPT = "Say hello to the benchmark in one short sentence, please."
_TEXT = re.compile(rb'"content":\s*"[^"]')
#: Measured time after connections are open (their first requests are not counted).
WARM_S = 1.0


def chat_body(model: str, stream: bool) -> bytes:
    """The one request every path gets: a short prompt, sampling on (never cached)."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "temperature": 0.7,
        "max_tokens": 32,
    }
    if stream:
        body["stream"] = True
    return json.dumps(body).encode()


def headers_for(key: str | None) -> dict[str, str]:
    auth = {"Authorization": f"Bearer {key}"} if key else {}
    return {"Content-Type": "application/json", **auth}


def plain_point(
    url: str, model: str, seconds: float, concurrency: int, key: str | None
) -> dict[str, Any]:
    target = Target.parse(url)
    bodies = (CHAT_PATH, [chat_body(model, False)], headers_for(None))
    requests = build_requests(target, model, None, bodies, key, 0.0)
    step = Step(f"c={concurrency}", seconds, ramp_s=WARM_S, concurrency=concurrency)
    result = run_load_test(Plan([step], timeout_s=30.0), target, requests).steps[0]
    return {
        "requests_per_s": result.throughput_rps,
        "p50_ms": result.latency_ms["p50"],
        "p99_ms": result.latency_ms["p99"],
        "requests": result.requests,
        "errors": sum(result.errors.values()),
        "error_statuses": result.errors,
    }


class StreamPoint:
    """A closed loop of streaming requests: first-text and whole-stream latencies."""

    def __init__(self, url: str, model: str, key: str | None) -> None:
        self.target = Target.parse(url)
        self.request = encode_request(
            self.target, "POST", CHAT_PATH, chat_body(model, True), headers_for(key)
        )
        self.first_s: list[float] = []
        self.total_s: list[float] = []
        self.errors: dict[str, int] = {}
        self.measure_from = self.elapsed_s = 0.0

    async def run(self, seconds: float, concurrency: int) -> None:
        begin = time.perf_counter()
        self.measure_from, end = begin + WARM_S, begin + WARM_S + seconds
        await asyncio.gather(*(self._connection(end) for _ in range(concurrency)))
        self.elapsed_s = time.perf_counter() - self.measure_from

    async def _connection(self, end: float) -> None:
        """Requests one after another until ``end``; those sent during the warm-up are
        not counted, and each connection sends until one is (a gateway slower than
        the point's length still gets ``concurrency`` measured requests)."""
        link: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        counted = False
        while (sent := time.perf_counter()) < end or not counted:
            try:
                link = link or await asyncio.open_connection(self.target.host, self.target.port)
                async with asyncio.timeout(30.0):
                    status, first = await self._exchange(*link, sent)
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
                if link is not None:
                    link[1].close()
                link, status, first = None, 0, None
            if sent < self.measure_from:
                continue
            counted = True
            if status != 200 or first is None:
                self.errors[str(status)] = self.errors.get(str(status), 0) + 1
                continue
            self.first_s.append(first)
            self.total_s.append(time.perf_counter() - sent)
        if link is not None:
            link[1].close()

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sent: float
    ) -> tuple[int, float | None]:
        writer.write(self.request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        if b"transfer-encoding: chunked" not in head.lower():
            length = re.search(rb"(?i)content-length:\s*(\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)
            return status, None
        first = None
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            data = await reader.readexactly(size + 2)
            if first is None and _TEXT.search(data):
                first = time.perf_counter() - sent
        await reader.readexactly(2)
        return status, first

    def figures(self) -> dict[str, Any]:
        first, total = LatencyHistogram(), LatencyHistogram()
        first.add(np.asarray(self.first_s))
        total.add(np.asarray(self.total_s))
        return {
            "requests_per_s": len(self.total_s) / self.elapsed_s,
            "p50_ms": total.quantile_s(0.5) * 1000,
            "p99_ms": total.quantile_s(0.99) * 1000,
            "first_p50_ms": first.quantile_s(0.5) * 1000,
            "first_p99_ms": first.quantile_s(0.99) * 1000,
            "requests": len(self.total_s),
            "errors": sum(self.errors.values()),
            "error_statuses": self.errors,
        }


def stream_point(
    url: str, model: str, seconds: float, concurrency: int, key: str | None
) -> dict[str, Any]:
    import uvloop

    point = StreamPoint(url, model, key)
    uvloop.run(point.run(seconds, concurrency))
    return point.figures()


def alone_point(url: str, model: str, seconds: float, concurrency: int) -> dict[str, Any]:
    """servewell's upstream client (``serving/upstream.py``) in this process, no server:
    what a gateway's calls to the upstream cost by themselves."""
    import uvloop

    from servewell.core.deadline import Deadline
    from servewell.core.remote_spec import parse_remote_spec
    from servewell.serving.upstream import Upstream

    body = chat_body(model, False)
    latencies: list[float] = []
    calls = [0]

    async def run() -> float:
        spec = parse_remote_spec(f"kind: openai\nurl: {url}\nmodel: {model}\nretries: 0\n")
        upstream = Upstream(spec, "bench", 1)
        upstream.load()
        await upstream.start()

        async def connection(measure_from: float, end: float) -> None:
            while (sent := time.perf_counter()) < end:
                await upstream.post(CHAT_PATH, body, Deadline.after_ms(30_000))
                calls[0] += 1
                if sent >= measure_from:
                    latencies.append(time.perf_counter() - sent)

        begin = time.perf_counter()
        await asyncio.gather(
            *(connection(begin + WARM_S, begin + WARM_S + seconds) for _ in range(concurrency))
        )
        await upstream.close()
        return time.perf_counter() - begin - WARM_S

    cpu_before = time.process_time()
    elapsed_s = uvloop.run(run())
    cpu_s = time.process_time() - cpu_before
    histogram = LatencyHistogram()
    histogram.add(np.asarray(latencies))
    return {
        "requests_per_s": len(latencies) / elapsed_s,
        "p50_ms": histogram.quantile_s(0.5) * 1000,
        "p99_ms": histogram.quantile_s(0.99) * 1000,
        "requests": len(latencies),
        "errors": 0,
        "cpu_us": cpu_s / max(calls[0], 1) * 1e6,  # this process's CPU over every call
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("model")
    parser.add_argument("seconds", type=float)
    parser.add_argument("concurrency", type=int)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--key")
    parser.add_argument("--alone", action="store_true", help="servewell's upstream client alone")
    args = parser.parse_args()
    if args.alone:
        print(json.dumps(alone_point(args.url, args.model, args.seconds, args.concurrency)))
        return
    point = stream_point if args.stream else plain_point
    print(json.dumps(point(args.url, args.model, args.seconds, args.concurrency, args.key)))


if __name__ == "__main__":
    main()
