"""The record step of every request: its id, the in-flight count, the request metrics
and the access line. The gateway (inference) and the HTTP edge (everything else) share
one :class:`Recorder`, so both count into the same gauge and write the same line."""

from __future__ import annotations

import itertools
import os

from servewell.observability import AccessLog, RequestRecord, ServingMetrics

#: Fresh ids: a random prefix per process, then a counter (unique, and cheaper than
#: fresh randomness per request; request ids are names, not secrets).
_ID_PREFIX = os.urandom(6).hex()
_id_counter = itertools.count(1)


def request_id_from(value: bytes | None) -> str:
    """The client's ``X-Request-Id`` when it is a sane one, else a fresh id."""
    if value is not None:
        text = value.decode("latin-1")
        if 0 < len(text) <= 128 and text.isascii() and text.isprintable():
            return text
    return f"{_ID_PREFIX}{next(_id_counter):012x}"


class Recorder:
    def __init__(self, metrics: ServingMetrics, access_log: AccessLog | None) -> None:
        self.metrics = metrics
        self.access_log = access_log
        self.active = 0
        """Requests being handled now (a request answered without awaiting never is)."""
        self._counts_in_flight = metrics.watch_in_flight(lambda: self.active)

    def is_alone(self) -> bool:
        """Whether at most one request is being handled now."""
        return self.active <= 1

    def enter(self) -> None:
        """A request began (one that awaits on its way)."""
        self.active += 1
        if self._counts_in_flight:
            self.metrics.in_flight.inc()

    def leave(self) -> None:
        self.active -= 1
        if self._counts_in_flight:
            self.metrics.in_flight.dec()

    def finish(self, record: RequestRecord, elapsed_s: float, client: str | None) -> None:
        """An answered request in the metrics and the access log."""
        self.metrics.observe_request(
            record.model, record.version, record.protocol, record.status, elapsed_s
        )
        if record.error:
            self.metrics.count_error(record.error)
        if self.access_log is not None:
            self.access_log.write(record, elapsed_s, client)

    def close(self) -> None:
        if self.access_log is not None:
            self.access_log.close()
