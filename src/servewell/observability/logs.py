"""JSON log lines on stdout, with the current request's id, model and version.

The HTTP edge puts a :class:`RequestRecord` in a context variable for each request and
fills it as the request goes; :class:`JsonFormatter` adds its id, model and version to
every log line written while handling it, and the access log is one line per request
built from it. Request bodies and keys never go into a record.
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import orjson

from servewell.observability.stdout_writer import StdoutWriter, stdout_writer

ACCESS_LOGGER = "servewell.access"


@dataclass(slots=True)
class RequestRecord:
    """What the access log says about one request; handlers fill in the model part."""

    request_id: str
    method: str
    path: str
    protocol: str = "other"
    model: str = ""
    version: str = ""
    status: int = 0
    batch_size: int = 0
    error: str = ""
    """The error code when the request failed."""
    caller: str = ""
    """Who called: an API key's name (never the key), or ip:<address> without one."""
    cache: str = ""
    """``hit``, ``miss``, ``bypass`` or ``stale`` (the cache fallback answered) when the
    response cache was consulted."""
    response_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    """Headers layers before the route add to the response (``RateLimit-*``); the edge
    sends them with its own, so no layer wraps ``send`` for them."""


_current: ContextVar[RequestRecord | None] = ContextVar("servewell_request", default=None)


def current_request() -> RequestRecord | None:
    """The record of the request being handled in this context, if any."""
    return _current.get()


def bind_request(record: RequestRecord) -> Any:
    """Make ``record`` the current request; returns a token for :func:`unbind_request`."""
    return _current.set(record)


def unbind_request(token: Any) -> None:
    _current.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request context, extras."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _iso_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        else:
            line["message"] = record.getMessage()
            request = _current.get()
            if request is not None:
                line["request_id"] = request.request_id
                if request.model:
                    line["model"] = request.model
                    line["version"] = request.version
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class WriterHandler(logging.Handler):
    """Each record formatted on the thread that logs it (so the request context is the
    right one) and handed to stdout's writer thread, which never blocks."""

    def __init__(self, writer: StdoutWriter) -> None:
        super().__init__()
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.writer.write((self.format(record) + "\n").encode())
        except Exception:
            self.handleError(record)


def configure_logging(level: str = "INFO") -> None:
    """Send every log line, servewell's and uvicorn's, to stdout as JSON, through this
    process's stdout writer thread (httpx's and httpcore's from WARNING only). Call
    once, at the edge (a server process), never from library code."""
    handler = WriterHandler(stdout_writer())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs each request's full URL at INFO, a webhook's user:password@ and ?token=
    # with it; servewell logs its own line about a delivery, naming only the host.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _iso_time(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"
