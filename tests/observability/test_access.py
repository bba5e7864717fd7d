from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest

from servewell.observability import (
    LoggerAccessLog,
    RequestRecord,
    StreamAccessLog,
)


def _record(index: int = 0) -> RequestRecord:
    return RequestRecord(
        f"rid-{index}", "POST", "/v1/models/iris:predict", protocol="rest", model="iris",
        version="1", status=200, batch_size=3, caller="ip:127.0.0.1", cache="miss",
    )  # fmt: skip


def _lines(stream: io.BytesIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_stream_line_has_the_logger_lines_fields(caplog: pytest.LogCaptureFixture) -> None:
    stream = io.BytesIO()
    StreamAccessLog(stream).write(_record(), 0.0012345, "10.0.0.1")  # no loop: written now
    with caplog.at_level(logging.INFO, logger="servewell.access"):
        LoggerAccessLog(logging.getLogger("servewell.access")).write(
            _record(), 0.0012345, "10.0.0.1"
        )
    (line,) = _lines(stream)
    (record,) = caplog.records
    assert line.pop("time").endswith("Z")  # type: ignore[union-attr]
    assert (line.pop("level"), line.pop("logger")) == ("info", "servewell.access")
    assert line == record.fields  # type: ignore[attr-defined]
    assert line["latency_ms"] == 1.234
    assert line["cache"] == "miss"


def test_stream_lines_wait_for_the_timer_then_come_out_whole() -> None:
    stream = io.BytesIO()

    async def serve() -> tuple[bytes, bytes]:
        log = StreamAccessLog(stream, flush_after_s=0.01)
        for index in range(40):
            log.write(_record(index), 0.001, None)
        before = stream.getvalue()
        async with asyncio.timeout(30):  # the timer must fire; never wait forever
            while not stream.getvalue():
                await asyncio.sleep(0.005)
        return before, stream.getvalue()

    before, after = asyncio.run(serve())
    assert before == b""  # nothing written on the request's path
    lines = after.splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == [f"rid-{i}" for i in range(40)]
    first = json.loads(lines[0])
    assert first["time"].endswith("Z")
    assert first["level"] == "info"


def test_close_writes_what_is_waiting() -> None:
    stream = io.BytesIO()

    async def serve() -> None:
        log = StreamAccessLog(stream, flush_after_s=60)
        log.write(_record(), 0.001, None)
        assert stream.getvalue() == b""
        log.close()

    asyncio.run(serve())
    assert len(_lines(stream)) == 1
