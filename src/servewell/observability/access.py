"""The access log: one JSON line per finished request.

Two writers share one line format. :class:`LoggerAccessLog` hands each line to the
``servewell.access`` logger (what an app built in a test or a notebook uses, so the lines
go wherever logging is configured). :class:`StreamAccessLog` is what ``servewell serve``
uses: it keeps the lines in memory and hands them to stdout's writer thread
(``stdout_writer.py``, which never blocks) in one piece, from a timer on the event loop
(every ``flush_after_s``) or when ``max_lines`` are waiting, so the request itself pays
for building one line and nothing else. Both write the same
fields: time, level, logger, then the request's own (see :func:`access_fields`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

import orjson

from servewell.observability.logs import ACCESS_LOGGER, RequestRecord
from servewell.observability.stdout_writer import ByteSink


class AccessLog(Protocol):
    """Where the edge reports each finished request."""

    def write(self, record: RequestRecord, latency_s: float, client: str | None) -> None: ...

    def close(self) -> None:
        """Write out whatever is still waiting."""


def access_fields(
    record: RequestRecord,
    latency_s: float,
    client: str | None,
    fields: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The request's part of its access line (never its body or a key), added to
    ``fields`` when given (one dict a line, not two)."""
    if fields is None:
        fields = {}
    fields["request_id"] = record.request_id
    fields["method"] = record.method
    fields["path"] = record.path
    fields["status"] = record.status
    fields["latency_ms"] = round(latency_s * 1000, 3)
    if record.model:
        fields["model"] = record.model
        fields["version"] = record.version
        fields["protocol"] = record.protocol
    if record.batch_size:
        fields["batch_size"] = record.batch_size
    if record.error:
        fields["error"] = record.error
    if record.caller:
        fields["caller"] = record.caller
    if record.cache:
        fields["cache"] = record.cache
    if client:
        fields["client"] = client
    return fields


def log_access(
    logger: logging.Logger, record: RequestRecord, latency_s: float, client: str | None
) -> None:
    """Write the access line of one finished request through ``logger``."""
    if not logger.isEnabledFor(logging.INFO):
        return
    fields = access_fields(record, latency_s, client)
    # makeRecord + handle: the same record logger.info would make, without its
    # stack walk to find the caller.
    logger.handle(
        logger.makeRecord(
            logger.name, logging.INFO, "", 0, "access", (), None, extra={"fields": fields}
        )
    )


class LoggerAccessLog:
    """Access lines through the standard ``logging`` machinery (one record each)."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def write(self, record: RequestRecord, latency_s: float, client: str | None) -> None:
        log_access(self.logger, record, latency_s, client)

    def close(self) -> None:
        pass


class StreamAccessLog:
    """Access lines kept in memory and written to ``stream`` in batches (see the module
    docstring). Lines still waiting when the process is killed are lost; a server that
    shuts down normally calls :meth:`close`."""

    def __init__(self, stream: ByteSink, flush_after_s: float = 0.05, max_lines: int = 512):
        self.stream = stream
        self.flush_after_s = flush_after_s
        self.max_lines = max_lines
        self._lines: list[bytes] = []
        self._timer: asyncio.TimerHandle | None = None
        self._second = -1
        self._second_text = ""
        self._millisecond = -1
        self._millisecond_text = ""

    def write(self, record: RequestRecord, latency_s: float, client: str | None) -> None:
        now = time.time()
        line = access_fields(
            record,
            latency_s,
            client,
            {"time": self._iso_time(now), "level": "info", "logger": ACCESS_LOGGER},
        )
        lines = self._lines
        lines.append(orjson.dumps(line, default=str) + b"\n")
        if len(lines) >= self.max_lines:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # called outside an event loop: write at once
                self.flush()
                return
            self._timer = loop.call_later(self.flush_after_s, self.flush)

    def flush(self) -> None:
        """Write every waiting line now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        lines, self._lines = self._lines, []
        if lines:
            self.stream.write(b"".join(lines))
            self.stream.flush()

    def close(self) -> None:
        self.flush()

    def _iso_time(self, now: float) -> str:
        millisecond = int(now * 1000)
        if millisecond != self._millisecond:  # lines in the same millisecond share it
            self._millisecond = millisecond
            second = millisecond // 1000
            if second != self._second:
                self._second = second
                self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._millisecond_text = f"{self._second_text}.{millisecond % 1000:03d}Z"
        return self._millisecond_text
