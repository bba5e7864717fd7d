"""The HTTP server's section of the settings (``server:``): what ``servewell serve``
listens on, how it batches, and what a client may hold of it."""

from __future__ import annotations

import ipaddress
import json
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from servewell.settings.models import BatchingOverrides, BatchingSettings
from servewell.settings.section import Section


class ServerSettings(Section):
    """The HTTP inference server (``servewell serve``)."""

    host: str = "127.0.0.1"
    """Interface to listen on."""
    port: int = Field(default=8000, ge=0, le=65535)
    """TCP port to listen on."""
    workers: int = Field(default=1, ge=1)
    """Server processes sharing the port."""
    models: list[str] = Field(default_factory=list)
    """Model references to serve (``name``, ``name@2``, ``name@staging``); empty serves
    every registered model's production alias, else its latest version."""
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1)
    """Largest request body; larger ones get 413."""
    max_receiving_body_bytes: int = Field(default=256 * 1024 * 1024, ge=1)
    """The request bodies one server process holds while they arrive, all together: a
    piece that would pass it gets 503 with ``Retry-After`` (many slow uploads at once
    would otherwise hold ``max_connections`` x ``max_body_bytes``). At least one body of
    ``max_body_bytes`` always fits."""
    max_header_bytes: int = Field(default=64 * 1024, ge=1024)
    """Largest request line plus headers, counted as they arrive; larger ones get 431
    and the connection is closed. 64 KiB is nginx's whole header budget twice over
    (4 x 8 KiB): room for big cookies and tokens, while a client cannot make a worker
    buffer megabytes of headers."""
    header_timeout_s: float = Field(default=10.0, gt=0)
    """How long a request's headers may take to arrive, from the connection's opening
    (its first request) or the request's first byte (later ones). Past it the client
    gets 408 and the connection is closed; a new connection that sends nothing is just
    closed. 10 s is far above any honest client and keeps slow-header clients from
    holding connections for long."""
    body_timeout_s: float = Field(default=30.0, gt=0)
    """Longest wait between two pieces of a request body (not for the whole body: a
    large upload that keeps moving is fine). Past it the client gets 408 and the
    connection is closed, and an inference waiting for that body ends as a 408 too.
    Not counted while the server itself is not reading (it is busy with the body so far,
    or owes the client a 100 Continue)."""
    min_body_rate_bytes_s: int = Field(default=500, ge=0)
    """Once a body has been arriving for ``body_timeout_s``, it must average at least
    this many bytes a second, or the client gets 408: a body trickled just under the
    pause limit would otherwise hold its connection (and its buffer) for as long as the
    client likes. 0: no minimum rate. (Apache's mod_reqtimeout has the same default.)"""
    max_connections: int = Field(default=4096, ge=1)
    """Open connections per server process (``--workers N``: each worker has this many).
    One past it is answered 503 with ``Retry-After`` and closed. 4096 is what one worker
    serves comfortably with keep-alive; the process's open-file limit lowers it when it
    has to (half of ``ulimit -n``, less a reserve, as refused connections also hold a
    file for a moment), so that the limit is a clear 503 and never a failing accept."""
    access_log: bool = True
    """Write one JSON line per request to stdout."""
    shutdown_delay_s: float = Field(default=0.0, ge=0)
    """On SIGTERM, how long to go on accepting and serving (readiness already false)
    before the port closes, so load balancers stop sending first (Kubernetes: a few
    seconds)."""
    drain_timeout_s: float = Field(default=30.0, gt=0)
    """After the port closes, how long the requests already received may take to be
    answered; those still waiting then get 503 (``shutting_down``)."""
    retry_after_s: int = Field(default=1, ge=0)
    """``Retry-After`` sent with a 503 when a queue is full."""
    max_queue_wait_ms: float | None = Field(default=None, gt=0)
    """When the oldest request waiting for a model has waited longer than this, new
    requests for that model are shed at once (503, ``Retry-After``) rather than join a
    queue that cannot serve them in time. Unset: only the queue's size bounds it."""
    shadow_queue_size: int = Field(default=100, ge=1)
    """Copies of requests waiting for a model's shadow version (``servewell traffic
    shadow``), per model; past it a copy is dropped and counted
    (``servewell_shadow_dropped_total``), never waited for."""
    memory_budget_mb: int | None = Field(default=None, ge=1)
    """Memory one server process may give to the model versions it holds (MiB): a load
    that would pass it is refused (507 / exit 10) and what is served keeps serving. Unset:
    half of the machine's memory (or of its cgroup's limit, when lower), divided among
    ``workers``. Each version counts what it took at its first load (stored in the
    registry), or its artifact's size times ``memory_estimate_factor`` before; during a
    promote the old and the new version both count."""
    memory_estimate_factor: float = Field(default=3.0, gt=0)
    """A version never loaded yet is expected to take its artifact's size times this:
    weights unpacked from a compressed pickle, ONNX Runtime's optimized copy of the
    graph and its arenas take a few times the file's bytes."""
    fast_lane: bool = True
    """Answer response-cache hits inside the HTTP protocol, before the ASGI app (only
    with the in-process cache and rate limiter). Off, every request takes the ASGI path;
    answers are the same either way."""
    load_before_serving: bool = False
    """Finish loading models before accepting connections. ``servewell serve --workers N``
    turns it on: workers share one port, so a worker still loading would answer 503 while
    its siblings are ready. With one process, liveness answers at once instead."""
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Proxies whose ``X-Forwarded-For``/``X-Forwarded-Proto`` are believed: addresses,
    networks (``10.0.0.0/8``) or ``*`` (any); a list, or one comma-separated string. Empty
    (the default): the headers are ignored and the client is the socket's peer, so
    nobody can pick the address the access log, rate limits and lockouts see."""
    worker_start_timeout_s: int = Field(default=120, ge=1)
    """With ``--workers N``: how long a worker may take to import, load and warm up its
    models before the supervisor gives up on it and starts another (uvicorn's worker
    health check, 5 s by default, killed workers still importing on a loaded machine)."""
    batching: BatchingSettings = Field(default_factory=BatchingSettings)
    """Batching defaults for every model (``models.<name>.batching`` changes them for one)."""
    model_batching: dict[str, BatchingOverrides] = Field(default_factory=dict)
    """Deprecated: ``models.<name>.batching``. Read through ``Settings.model``."""

    @field_validator("forwarded_allow_ips", mode="before")
    @classmethod
    def _read_addresses(cls, value: Any) -> Any:
        """A JSON list or a comma-separated string (the environment's ways) as a list."""
        if not isinstance(value, str):
            return value
        if value.lstrip().startswith("["):
            return json.loads(value)
        return [part.strip() for part in value.split(",") if part.strip()]

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _check_addresses(cls, value: list[str]) -> list[str]:
        for entry in value:
            _check_trusted_address(entry)
        return value


def _check_trusted_address(entry: str) -> None:
    """An entry of ``server.forwarded_allow_ips``: ``*``, an address or a network."""
    if entry == "*":
        return
    try:
        ipaddress.ip_network(entry, strict=False)
    except ValueError:
        raise ValueError(f"{entry!r} is not an IP address, a network (10.0.0.0/8) or '*'") from None
