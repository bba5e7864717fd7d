"""The load test's connection against scripted servers on a loopback port: answers by
length and by chunks (however the bytes are split), ``Connection: close``, a request
past its timeout, heads past 64 KiB, TLS, and an open loop against nothing listening."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from certificates import self_signed
from servewell.loadtest.answer import AnswerReader
from servewell.loadtest.bodies import RequestSet, build_requests
from servewell.loadtest.client import Connection, Target
from servewell.loadtest.schedule import Phases, Step, open_loop
from servewell.loadtest.stats import NO_ANSWER, StepRecorder

pytestmark = pytest.mark.anyio

REQUEST = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
BY_LENGTH = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Servewell-Version: 3\r\n\r\n{}"
CHUNKED = (
    b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nx-servewell-version: 4\r\n\r\n"
    b"3\r\nabc\r\n10;ext=1\r\n0123456789abcdef\r\n0\r\n\r\n"
)
CLOSING = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

Answers = Callable[[int, int], Awaitable[bytes | None]]
"""(connection number, request number on it) -> the bytes to answer, None: hang up."""


class Scripted:
    """A server that reads each request whole and answers what ``answers`` says."""

    def __init__(self, answers: Answers) -> None:
        self.answers = answers
        self.connections = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number, self.connections = self.connections, self.connections + 1
        try:
            for request in range(1000):
                await reader.readuntil(b"\r\n\r\n")
                await reader.readexactly(2)
                answer = await self.answers(number, request)
                if answer is None:
                    return
                for i in range(0, len(answer), 7):  # in small pieces, as a slow network
                    writer.write(answer[i : i + 7])
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _exchanges(
    answers: Answers, count: int, timeout_s: float = 5.0, tls: ssl.SSLContext | None = None
) -> tuple[list[tuple[int, str | None]], int]:
    """``count`` exchanges on one Connection: their results, and connections opened."""
    server = Scripted(answers)
    listening = await asyncio.start_server(server.serve, "127.0.0.1", 0, ssl=tls)
    port = listening.sockets[0].getsockname()[1]
    connection = Connection(Target("127.0.0.1", port, tls=tls is not None), timeout_s)
    try:
        results = [await asyncio.wait_for(connection.exchange(REQUEST), 10) for _ in range(count)]
    finally:
        connection.close()
        listening.close()
        await listening.wait_closed()
    return results, server.connections


def _always(answer: bytes) -> Answers:
    async def answers(connection: int, request: int) -> bytes | None:
        return answer

    return answers


async def test_answers_by_length_and_by_chunks_on_one_kept_connection() -> None:
    async def answers(connection: int, request: int) -> bytes:
        return BY_LENGTH if request % 2 == 0 else CHUNKED

    results, opened = await _exchanges(answers, 4)
    assert results == [(200, "3"), (201, "4"), (200, "3"), (201, "4")]
    assert opened == 1


def test_the_reader_parses_an_answer_fed_a_byte_at_a_time() -> None:
    reader = AnswerReader()
    fed = [reader.feed(CHUNKED[i : i + 1]) for i in range(len(CHUNKED))]
    assert fed[:-1] == [None] * (len(CHUNKED) - 1)
    assert fed[-1] is not None
    assert (fed[-1].status, fed[-1].version, fed[-1].closes) == (201, "4", False)
    both = reader.feed(BY_LENGTH + CLOSING)  # two at once: the second waits its turn
    assert both is not None
    assert both.status == 200
    second = reader.feed(b"")
    assert second is not None
    assert second.closes


async def test_connection_close_is_followed_by_a_new_connection() -> None:
    results, opened = await _exchanges(_always(CLOSING), 3)
    assert results == [(200, None)] * 3
    assert opened == 3


async def test_a_request_past_its_timeout_counts_no_answer_and_the_next_one_works() -> None:
    async def answers(connection: int, request: int) -> bytes:
        if connection == 0:
            await asyncio.sleep(30)  # never, as far as the client waits
        return BY_LENGTH

    began = time.monotonic()
    results, opened = await _exchanges(answers, 2, timeout_s=0.3)
    assert results == [(NO_ANSWER, None), (200, "3")]
    assert opened == 2
    assert time.monotonic() - began < 10


async def test_a_server_hanging_up_counts_no_answer_then_the_client_reconnects() -> None:
    async def answers(connection: int, request: int) -> bytes | None:
        return None if connection == 0 else BY_LENGTH

    results, opened = await _exchanges(answers, 2)
    assert results == [(NO_ANSWER, None), (200, "3")]
    assert opened == 2


async def test_a_head_past_64_kib_or_no_http_counts_no_answer() -> None:
    huge = b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * (65 * 1024) + b"\r\nContent-Length: 0\r\n\r\n"
    assert (await _exchanges(_always(huge), 1))[0] == [(NO_ANSWER, None)]
    assert (await _exchanges(_always(b"SSH-2.0-nope\r\n\r\n"), 1))[0] == [(NO_ANSWER, None)]


async def test_https_with_a_trusted_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pem = self_signed(tmp_path / "server.pem")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pem)
    untrusted, _ = await _exchanges(_always(BY_LENGTH), 1, tls=context)
    assert untrusted == [(NO_ANSWER, None)]  # the machine's authorities do not know it
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))
    results, opened = await _exchanges(_always(CHUNKED), 2, tls=context)
    assert results == [(201, "4"), (201, "4")]
    assert opened == 1


async def test_an_open_loop_against_nothing_listening_counts_every_request_unanswered() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()  # the port is free: connecting is refused
    target = Target("127.0.0.1", port)
    requests: RequestSet = build_requests(target, "m", None, ("/", [b"{}"], {}), None, 0.0)
    recorder = StepRecorder("50/s", 0.0)
    phases = Phases(ramp=StepRecorder("ramp", 0.0), measured=recorder, measure_from=0.0)
    step = Step("50/s", 0.4, rate_per_s=50)
    await asyncio.wait_for(open_loop(step, target, requests, phases, 1.0), 30)
    assert phases.sent == 20
    assert recorder.statuses == {NO_ANSWER: 20}
