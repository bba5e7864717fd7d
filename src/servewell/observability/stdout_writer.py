"""One writer thread between a server process and its stdout.

Log lines and access lines are handed over as bytes and written by a thread of their
own, so a reader that stops reading (a full pipe, a paused ``kubectl logs``, a stuck
log shipper) blocks that thread, never the event loop or a request: before, one blocked
pipe froze the whole server. What waits is bounded (``max_pending_bytes``); past it,
lines are dropped and counted, and once writing works again one line says how many
were lost. Writes are whole lines of at most :data:`WRITE_BYTES` (a longer line goes
alone), so the lines of several worker processes sharing one pipe never interleave.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import BinaryIO, Protocol

_log = logging.getLogger("servewell.stdout")

#: Largest single write: a pipe takes writes up to PIPE_BUF (4096 bytes on Linux) whole.
WRITE_BYTES = 4096
#: What may wait for a stdout that is not being read before lines are dropped.
MAX_PENDING_BYTES = 16 * 1024 * 1024
#: How long the process waits at exit for what is still waiting to be written.
EXIT_FLUSH_S = 2.0


class ByteSink(Protocol):
    """Where whole lines go: a binary stream, or a :class:`StdoutWriter`."""

    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...


class StdoutWriter:
    """Whole lines to ``stream`` from a daemon thread; :meth:`write` never blocks."""

    def __init__(self, stream: BinaryIO, max_pending_bytes: int = MAX_PENDING_BYTES) -> None:
        self.stream = stream
        self.max_pending_bytes = max_pending_bytes
        self.dropped_lines = 0
        """Lines dropped since the start because too much was waiting."""
        self._pending: deque[bytes] = deque()
        self._pending_bytes = 0
        self._dropped_unreported = 0
        self._on_drop: Callable[[int], object] | None = None
        self._writing = False
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="servewell-stdout", daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> int:
        """Queue ``data`` (one or more whole lines, each ending in a newline); dropped
        and counted when too much is waiting already."""
        with self._wake:
            if self._pending_bytes + len(data) > self.max_pending_bytes:
                lines = data.count(b"\n") or 1
                self.dropped_lines += lines
                self._dropped_unreported += lines
                if self._on_drop is not None:
                    self._on_drop(lines)
                return 0
            self._pending.append(data)
            self._pending_bytes += len(data)
            self._wake.notify()
        return len(data)

    def count_drops(self, count: Callable[[int], object]) -> None:
        """Call ``count(lines)`` for every drop from now on (a metric's ``inc``), with
        what was dropped before first."""
        with self._wake:
            self._on_drop = count
            if self.dropped_lines:
                count(self.dropped_lines)

    def flush(self) -> None:
        """Nothing to do: the thread writes as soon as it can (a stream's method, so
        this stands wherever a stream does)."""

    def drain(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` until everything queued is written; whether it was."""
        with self._wake:
            return self._wake.wait_for(
                lambda: not self._pending and not self._writing, timeout=timeout_s
            )

    def _run(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: bool(self._pending))
                chunks = list(self._pending)
                self._pending.clear()
                self._pending_bytes = 0
                dropped, self._dropped_unreported = self._dropped_unreported, 0
                self._writing = True
            with contextlib.suppress(OSError, ValueError):  # stdout closed: nobody to tell
                self._write_lines(chunks)
            if dropped:  # through logging, so the line has the usual fields; written next
                _log.warning("%d log lines were dropped: stdout was not being read", dropped)
            with self._wake:
                self._writing = False
                self._wake.notify_all()

    def _write_lines(self, chunks: list[bytes]) -> None:
        batch: list[bytes] = []
        size = 0
        for line in b"".join(chunks).splitlines(keepends=True):
            if batch and size + len(line) > WRITE_BYTES:
                self._write(b"".join(batch))
                batch, size = [], 0
            batch.append(line)
            size += len(line)
        if batch:
            self._write(b"".join(batch))

    def _write(self, data: bytes) -> None:
        self.stream.write(data)
        self.stream.flush()


_writer: StdoutWriter | None = None
_writer_lock = threading.Lock()


def stdout_writer() -> StdoutWriter:
    """This process's one writer to its stdout (made on first use; at exit, what is
    still waiting gets :data:`EXIT_FLUSH_S` to be written)."""
    global _writer
    with _writer_lock:
        if _writer is None:
            import sys

            _writer = StdoutWriter(sys.stdout.buffer)
            atexit.register(_writer.drain, EXIT_FLUSH_S)
        return _writer
