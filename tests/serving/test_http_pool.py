"""The upstream's HTTP client against a real server on a loopback port that answers as
each test scripts it, byte for byte: lengths, chunks, a body ended by the close,
keep-alive and its end, a closed idle connection, the pool's bound, TLS, and what goes
wrong (malformed answers, huge headers or bodies, silence, the deadline). Both event
loops: the stdlib's and uvloop's (which servers run on)."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from certificates import self_signed
from servewell.serving.http_faults import (
    DeadlinePassed,
    Dropped,
    ReadTimeout,
    TooLarge,
    Unreachable,
)
from servewell.serving.http_pool import HttpPool

pytestmark = pytest.mark.anyio
OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"

#: What the server does with one request: the bytes to answer (None: close at once),
#: and how long to wait before.
Reply = Callable[[bytes], tuple[bytes | None, float]]


@pytest.fixture(params=["asyncio", "uvloop"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return "asyncio", {"use_uvloop": request.param == "uvloop"}


@dataclass
class RawServer:
    """Answers each request with ``reply(request)``; counts connections."""

    reply: Reply = lambda request: (OK, 0.0)
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    port: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                answer, delay_s = self.reply(request)
                if delay_s:
                    await asyncio.sleep(delay_s)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if b"connection: close" in answer.lower():
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[RawServer]:
    raw = RawServer()
    listening = await asyncio.start_server(raw.serve, "127.0.0.1", 0)
    raw.port = listening.sockets[0].getsockname()[1]
    yield raw
    listening.close()


def pool_for(url: str, **more: Any) -> HttpPool:
    settings: dict[str, Any] = {
        "max_connections": 4,
        "max_body_bytes": 1024,
        "connect_timeout_s": 5.0,
        "read_timeout_s": 5.0,
    }
    return HttpPool(url, {"authorization": "Bearer k"}, **(settings | more))


def url_of(server: RawServer) -> str:
    return f"http://127.0.0.1:{server.port}"


def soon(seconds: float = 5.0) -> float:
    return time.monotonic() + seconds


async def test_a_request_carries_its_headers_and_the_connection_is_kept(
    server: RawServer,
) -> None:
    pool = pool_for(url_of(server) + "/base")
    for _ in range(3):
        answer = await pool.post("/v1/x", b'{"a":1}', soon())
        assert (answer.status, answer.body) == (200, b"ok")
    await pool.close()
    assert server.connections == 1
    head = server.requests[0].split(b"\r\n")
    assert head[0] == b"POST /base/v1/x HTTP/1.1"
    assert f"host: 127.0.0.1:{server.port}".encode() in head
    assert b"authorization: Bearer k" in head
    assert b"content-length: 7" in head
    assert server.requests[0].endswith(b'\r\n\r\n{"a":1}')


async def test_chunked_and_until_close_bodies_are_read_whole(server: RawServer) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    until_close = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nthe rest"
    answers = iter([chunked, until_close, OK])
    server.reply = lambda request: (next(answers), 0.0)
    pool = pool_for(url_of(server))
    assert (await pool.post("/", b"", soon())).body == b"abcde"
    assert (await pool.post("/", b"", soon())).body == b"the rest"
    assert (await pool.post("/", b"", soon())).body == b"ok"
    await pool.close()
    assert server.connections == 2  # the close ended the first connection, not the chunks


async def test_an_idle_connection_the_server_closed_is_not_reused(server: RawServer) -> None:
    answers = iter([b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok", OK])
    server.reply = lambda request: (next(answers), 0.0)
    pool = pool_for(url_of(server))
    await pool.post("/", b"", soon())
    await asyncio.sleep(0.05)
    assert (await pool.post("/", b"", soon())).body == b"ok"
    await pool.close()
    assert server.connections == 2


async def test_callers_past_max_connections_wait_their_turn(server: RawServer) -> None:
    server.reply = lambda request: (OK, 0.05)
    pool = pool_for(url_of(server), max_connections=2)
    answers = await asyncio.gather(*(pool.post("/", b"", soon()) for _ in range(6)))
    await pool.close()
    assert [answer.body for answer in answers] == [b"ok"] * 6
    assert server.connections == 2


async def test_a_body_past_the_limit_is_too_large_by_length_or_by_chunks(
    server: RawServer,
) -> None:
    declared = b"HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n" + b"x" * 5000
    chunk = b"200\r\n" + b"y" * 512 + b"\r\n"
    chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + chunk * 3 + b"0\r\n\r\n"
    answers = iter([declared, chunked, OK])
    server.reply = lambda request: (next(answers), 0.0)
    pool = pool_for(url_of(server))
    with pytest.raises(TooLarge):
        await pool.post("/", b"", soon())
    with pytest.raises(TooLarge):
        await pool.post("/", b"", soon())
    assert (await pool.post("/", b"", soon())).body == b"ok"  # a fresh connection
    await pool.close()


async def test_malformed_answers_and_huge_headers_are_dropped(server: RawServer) -> None:
    huge = b"HTTP/1.1 200 OK\r\n" + b"x-filler: " + b"z" * 70_000 + b"\r\n\r\n"
    answers = iter([b"SMTP ready\r\n\r\n", huge, None])
    server.reply = lambda request: (next(answers), 0.0)
    pool = pool_for(url_of(server))
    for _ in range(3):  # not HTTP; headers past 64 KiB; closed before answering
        with pytest.raises(Dropped):
            await pool.post("/", b"", soon())
    await pool.close()


async def test_silence_is_a_read_timeout_and_the_deadline_comes_first(
    server: RawServer,
) -> None:
    server.reply = lambda request: (OK, 2.0)
    pool = pool_for(url_of(server), read_timeout_s=0.2)
    with pytest.raises(ReadTimeout):
        await pool.post("/", b"", soon())
    with pytest.raises(DeadlinePassed):
        await pool.post("/", b"", soon(0.1))
    await pool.close()


async def test_a_refused_connection_is_unreachable() -> None:
    listening = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    listening.close()
    await listening.wait_closed()
    pool = pool_for(f"http://127.0.0.1:{port}")
    with pytest.raises(Unreachable):
        await pool.post("/", b"", soon())
    await pool.close()


async def test_a_stream_arrives_piece_by_piece_and_a_cancelled_caller_frees_its_connection(
    server: RawServer,
) -> None:
    pieces = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n"
    server.reply = lambda request: (pieces, 0.0)  # never ends: the stream stays open
    pool = pool_for(url_of(server), max_connections=1)
    streamed = await pool.stream("/", b"", soon())
    assert streamed.status == 200
    reading = streamed.chunks()
    assert await reading.__anext__() == b"first"
    waiting = asyncio.ensure_future(reading.__anext__())
    await asyncio.sleep(0.05)
    waiting.cancel()
    streamed.close()  # unread to its end: closed, its room given back
    server.reply = lambda request: (OK, 0.0)
    assert (await pool.post("/", b"", soon())).body == b"ok"
    await pool.close()


@pytest.fixture
def certificate(tmp_path: Path) -> Path:
    """A self-signed certificate for 127.0.0.1 (and its key in the same file)."""
    return self_signed(tmp_path / "upstream.pem")


async def test_https_checks_the_certificate(
    certificate: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = RawServer()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate)
    listening = await asyncio.start_server(raw.serve, "127.0.0.1", 0, ssl=context)
    url = f"https://127.0.0.1:{listening.sockets[0].getsockname()[1]}"
    try:
        untrusted = pool_for(url)  # the machine's authorities do not know it
        with pytest.raises(Unreachable, match="TLS"):
            await untrusted.post("/", b"", soon())
        await untrusted.close()
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate))
        trusted = pool_for(url)
        assert (await trusted.post("/", b"", soon())).body == b"ok"
        assert (await trusted.post("/", b"", soon())).body == b"ok"
        await trusted.close()
    finally:
        listening.close()
    assert raw.connections == 1  # one kept connection (a refused handshake never reaches it)


async def test_an_answer_nobody_asked_for_ends_the_connection(server: RawServer) -> None:
    extra = b"HTTP/1.1 500 Oops\r\ncontent-length: 0\r\n\r\n"
    answers = iter([OK + extra, OK])
    server.reply = lambda request: (next(answers), 0.0)
    pool = pool_for(url_of(server))
    assert (await pool.post("/", b"", soon())).status == 200  # not the 500 behind it
    assert (await pool.post("/", b"", soon())).body == b"ok"
    await pool.close()
    assert server.connections == 2


async def test_bodies_past_the_streams_high_water_are_read_whole_or_as_the_reader_goes(
    server: RawServer,
) -> None:
    big = b"b" * 700_000  # past the 256 KiB a stream holds unread before pausing
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%b" % (len(big), big)
    server.reply = lambda request: (answer, 0.0)
    pool = pool_for(url_of(server), max_body_bytes=1 << 20)
    assert (await pool.post("/", b"", soon())).body == big  # a whole body never pauses
    streamed = await pool.stream("/", b"", soon())
    received = []
    async for chunk in streamed.chunks():
        received.append(chunk)
        await asyncio.sleep(0.001)  # a slow reader: the connection pauses and resumes
    streamed.close()
    assert b"".join(received) == big
    assert (await pool.post("/", b"", soon())).body == big
    await pool.close()
    assert server.connections == 1  # read to its end, the stream's connection was kept


async def test_a_whole_body_past_a_streams_buffer_is_read_whole(server: RawServer) -> None:
    body = b"z" * (1024 * 1024)  # 4 times what a stream holds unread before pausing
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%b" % (len(body), body)
    server.reply = lambda request: (answer, 0.0)
    pool = pool_for(url_of(server), max_body_bytes=2 * len(body))
    assert (await pool.post("/", b"", soon())).body == body
    await pool.close()


@asynccontextmanager
async def flooding(head: bytes, blob: bytes) -> AsyncIterator[str]:
    """A server that answers ``head``, then ``blob`` again and again, as fast as it is
    read, until the client closes the connection: its URL."""

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(head)
            while not writer.is_closing():
                writer.write(blob)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    listening = await asyncio.start_server(flood, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{listening.sockets[0].getsockname()[1]}"
    finally:
        listening.close()


async def test_endless_interim_answers_or_an_endless_header_are_dropped_at_64_kib() -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" * 1000
    for head, blob in [(b"", interim), (b"HTTP/1.1 200 OK\r\nx-filler: ", b"z" * 65536)]:
        async with flooding(head, blob) as url:
            pool = pool_for(url)
            with pytest.raises(Dropped, match="64 KiB"):
                async with asyncio.timeout(30):  # the bound of a test that fails
                    await pool.post("/", b"", soon())
            await pool.close()


async def test_the_deadline_ends_a_stream_that_never_stops_arriving() -> None:
    head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    async with flooding(head, b"1000\r\n" + b"e" * 4096 + b"\r\n") as url:
        pool = pool_for(url, max_body_bytes=2**62)  # never the limit: the deadline must end it
        streamed = await pool.stream("/", b"", soon(1.0))

        async def read_all() -> None:
            async for _ in streamed.chunks():
                pass

        with pytest.raises(DeadlinePassed):
            await asyncio.wait_for(read_all(), 30)  # the bound of a test that fails
        streamed.close()
        await pool.close()


async def test_a_caller_cancelled_at_any_point_of_connecting_frees_its_room(
    server: RawServer,
) -> None:
    server.reply = lambda request: (OK, 0.05)  # no caller is answered: each one connects
    pool = pool_for(url_of(server), max_connections=1)
    for turns in range(20):  # the caller is cancelled after `turns` turns of the loop
        calling = asyncio.ensure_future(pool.post("/", b"", soon()))
        for _ in range(turns):
            await asyncio.sleep(0)
        calling.cancel()
        await asyncio.gather(calling, return_exceptions=True)
    await asyncio.sleep(0.1)  # what the loop does of the cancelled connects, done
    assert (await pool.post("/", b"", soon(2.0))).body == b"ok"
    await pool.close()
