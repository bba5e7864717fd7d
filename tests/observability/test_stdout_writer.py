"""stdout's writer thread: whole lines in pipe-sized writes, never blocking the caller,
bounded while nobody reads, and saying what it had to drop."""

from __future__ import annotations

import io
import json
import logging
import threading

import pytest

from servewell.observability.stdout_writer import WRITE_BYTES, StdoutWriter


class Recorder(io.BytesIO):
    """A stream that records each write, and can be made to block like a full pipe."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.open = threading.Event()
        self.open.set()

    def write(self, data: object) -> int:
        assert isinstance(data, bytes)
        assert self.open.wait(timeout=60)  # a reader that stopped reading
        self.writes.append(data)
        return len(data)


def _line(index: int, size: int = 100) -> bytes:
    return json.dumps({"index": index, "pad": "x" * size}).encode() + b"\n"


def test_lines_come_out_whole_in_writes_no_larger_than_a_pipe_takes() -> None:
    stream = Recorder()
    writer = StdoutWriter(stream)
    for index in range(200):
        writer.write(_line(index))
    writer.write(_line(200, size=3 * WRITE_BYTES))  # longer than a pipe write: alone
    assert writer.drain(timeout_s=30)
    assert all(chunk.endswith(b"\n") for chunk in stream.writes)
    assert all(len(chunk) <= WRITE_BYTES for chunk in stream.writes[:-1])
    lines = b"".join(stream.writes).splitlines()
    assert [json.loads(line)["index"] for line in lines] == list(range(201))


def test_a_blocked_stream_never_blocks_the_caller_and_drops_past_the_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = Recorder()
    stream.open.clear()
    counted: list[int] = []
    writer = StdoutWriter(stream, max_pending_bytes=50 * len(_line(0)))
    writer.count_drops(counted.append)
    written = [writer.write(_line(index)) for index in range(120)]  # returns at once
    assert 0 in written  # some were dropped ...
    dropped = written.count(0)
    assert writer.dropped_lines == dropped == sum(counted)
    assert not writer.drain(timeout_s=0.05)  # ... and the rest waits for the reader
    with caplog.at_level(logging.WARNING, logger="servewell.stdout"):
        stream.open.set()
        writer.write(_line(999))
        assert writer.drain(timeout_s=30)
    (notice,) = caplog.records  # once writing works again: how many were lost
    assert notice.getMessage().startswith(f"{dropped} log lines were dropped")
    lines = [json.loads(line) for line in b"".join(stream.writes).splitlines()]
    kept = [line["index"] for line in lines]
    assert kept[-1] == 999
    assert len(kept) + dropped == 121


def test_drops_before_counting_began_are_counted_too() -> None:
    stream = Recorder()
    stream.open.clear()
    writer = StdoutWriter(stream, max_pending_bytes=1)
    writer.write(_line(0))
    writer.write(_line(1))
    counted: list[int] = []
    writer.count_drops(counted.append)
    assert sum(counted) == writer.dropped_lines >= 1
    stream.open.set()
