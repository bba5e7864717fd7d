"""The HTTP client of one remote model: a pooled connection to its upstream, retried,
bounded by the request's deadline, its failures in servewell's words.

One :class:`Upstream` per remote deployment (``core/remote_spec.py`` says where and
how), on one :class:`~servewell.serving.http_pool.HttpPool` of at most
``spec.max_connections`` keep-alive connections::

    Upstream(spec, model, version, *, breaker=None, on_retry=lambda: None)
    upstream.load() -> None            # reads the credential (env var); InvalidConfig if unset
    await upstream.start() -> None     # opens the pool
    await upstream.post(path, body, deadline) -> bytes              # a 2xx answer's body
    async with upstream.stream(path, body, deadline) as lines: ...  # a 2xx answer's lines
    await upstream.close() -> None

``path`` is relative to the spec's ``url``; ``body`` is JSON already encoded; every
request carries ``Authorization: Bearer <credential>`` when the spec names one.

Why not httpx or aiohttp (bench/README.md, issue #18): httpx's pool (httpcore) re-checks
every connection for every queued request (encode/httpx#3215), ~70 requests/s with 64
in flight to a 50 ms upstream; aiohttp's pool does ~900, but its request and response
objects cost ~100 µs of CPU a call, the largest single part of a gateway's request;
``serving/http_pool.py`` does what this client needs in ~15 µs. The spec's connect and
read timeouts, and the request's deadline, bound every exchange there.

Each attempt is admitted by the deployment's circuit breaker (when it has one) and
counted there as a local model's call is; a failed attempt (connection refused or
dropped, a timeout within the deadline, 429, 5xx) is made again up to ``spec.retries``
times by :func:`~servewell.serving.retry.call_with_retries`, waiting with full jitter or
the upstream's ``Retry-After``, never past the deadline; each retry calls ``on_retry``
(``servewell_retries_total``). ``stream`` retries only until the status arrives. What
the last attempt met is raised as:

==========================================  =========================================
connection refused, unreachable             ModelUnavailable (503)
429 Too Many Requests                       Overloaded (503, its Retry-After)
503 Service Unavailable                     ModelUnavailable (503, its Retry-After)
other 5xx, a dropped connection             ModelFailed (500)
4xx to our request (not retried)            ModelFailed (500)
a body past ``spec.max_response_bytes``     ModelFailed (500, not retried)
a timeout, the deadline                     DeadlineExceeded (504)
==========================================  =========================================

No message carries the upstream's body, its headers or the credential.
"""

from __future__ import annotations

import math
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from email.utils import parsedate_to_datetime
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from servewell.core.deadline import Deadline
from servewell.core.remote_spec import RemoteSpec
from servewell.errors import (
    DeadlineExceeded,
    InvalidConfig,
    ModelFailed,
    ModelUnavailable,
    Overloaded,
    ServewellError,
)
from servewell.serving.http_connection import Streamed
from servewell.serving.http_faults import (
    ConnectTimeout,
    DeadlinePassed,
    HttpFault,
    ReadTimeout,
    TooLarge,
    Unreachable,
)
from servewell.serving.http_pool import HttpPool
from servewell.serving.retry import Backoff, call_with_retries

if TYPE_CHECKING:
    from servewell.serving.breaker import CircuitBreaker

T = TypeVar("T")

MAX_RETRY_AFTER_S = 3600.0
"""A longer ``Retry-After`` is read as this (the deadline refuses it anyway)."""


class UpstreamFault(Exception):
    """One attempt failed: ``error`` is what the caller gets if it was the last one;
    ``retryable``: another attempt may succeed; ``retry_after_s``: the upstream's wish."""

    def __init__(
        self, error: ServewellError, *, retryable: bool, retry_after_s: float | None = None
    ) -> None:
        super().__init__(error.message)
        self.error = error
        self.retryable = retryable
        self.retry_after_s = retry_after_s


class Upstream:
    """The pooled, retried calls of remote model ``model`` version ``version``."""

    def __init__(
        self,
        spec: RemoteSpec,
        model: str,
        version: int,
        *,
        breaker: CircuitBreaker | None = None,
        on_retry: Callable[[], None] = lambda: None,
    ) -> None:
        self.spec = spec
        self.model = model
        self.version = version
        self.breaker = breaker
        self.on_retry = on_retry
        self._headers: dict[str, str] = {"content-type": "application/json"}
        self._pool: HttpPool | None = None

    def load(self) -> None:
        """Read the credential from the environment variable the spec names."""
        env = self.spec.credential_env
        if env is None:
            return
        value = os.environ.get(env, "")
        if not value:
            raise InvalidConfig(
                f"remote model '{self.model}': environment variable {env} (its upstream "
                f"credential) is not set; set it in servewell's environment ({env}=… "
                "servewell serve) and start servewell again"
            )
        self._headers["authorization"] = f"Bearer {value}"

    async def start(self) -> None:
        """Open the pool (on the running loop: its connections are that loop's)."""
        if self._pool is None:
            spec = self.spec
            self._pool = HttpPool(
                spec.base_url,
                self._headers,
                max_connections=spec.max_connections,
                max_body_bytes=spec.max_response_bytes,
                connect_timeout_s=spec.timeouts.connect_s,
                read_timeout_s=spec.timeouts.read_s,
            )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def post(self, path: str, body: bytes, deadline: Deadline | None) -> bytes:
        """The body of the upstream's 2xx answer to ``body`` POSTed to ``path``."""

        async def exchange() -> bytes:
            answer = await self._open_pool().post(path, body, _at(deadline))
            self._check_status(answer.status, answer.headers)
            return answer.body

        return await self._retried(partial(self._attempt, exchange, deadline), deadline)

    @asynccontextmanager
    async def stream(
        self, path: str, body: bytes, deadline: Deadline | None
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """The lines (``\\n`` removed) of the upstream's 2xx answer to ``body`` POSTed to
        ``path``, as they arrive; closed on exit. Reading past ``deadline`` is
        DeadlineExceeded, a connection dropped while reading ModelFailed."""

        async def exchange() -> Streamed:
            streamed = await self._open_pool().stream(path, body, _at(deadline))
            try:
                self._check_status(streamed.status, streamed.headers)
            except BaseException:
                streamed.close()
                raise
            return streamed

        streamed = await self._retried(partial(self._attempt, exchange, deadline), deadline)
        try:
            try:
                yield _lines(streamed.chunks())
            except HttpFault as fault:
                raise self._fault_of(fault, deadline).error from None
        finally:
            streamed.close()  # read to its end, the connection is kept; else closed

    def _open_pool(self) -> HttpPool:
        if self._pool is None:
            raise ModelUnavailable(self.model, self.version, "not loaded")
        return self._pool

    async def _retried(self, attempt: Callable[[], Awaitable[T]], deadline: Deadline | None) -> T:
        try:
            return await call_with_retries(
                attempt,
                self.spec.retries,
                deadline,
                on_retry=self.on_retry,
                backoff=Backoff(self.spec.backoff.first_s, self.spec.backoff.max_s),
                is_retryable=lambda exc: isinstance(exc, UpstreamFault) and exc.retryable,
                retry_after_of=lambda exc: getattr(exc, "retry_after_s", None),
            )
        except UpstreamFault as fault:
            raise fault.error from fault.__cause__

    async def _attempt(self, exchange: Callable[[], Awaitable[T]], deadline: Deadline | None) -> T:
        """One exchange with the upstream, admitted and counted by the breaker; the
        pool's faults as :class:`UpstreamFault`."""
        if deadline is not None and deadline.expired:
            raise self._deadline_exceeded(deadline)
        breaker = self.breaker
        ticket = breaker.admit() if breaker is not None else 0
        try:
            try:
                result = await exchange()
            except HttpFault as fault:
                raise self._fault_of(fault, deadline) from None
        except BaseException as exc:
            if breaker is not None:
                breaker.settle(ticket, exc)
            raise
        if breaker is not None:
            breaker.succeeded(ticket)
        return result

    def _check_status(self, status: int, headers: Mapping[bytes, bytes]) -> None:
        if 200 <= status < 300:
            return
        name, version = self.model, self.version
        raw = headers.get(b"retry-after")
        retry_after_s = retry_after(raw.decode("latin-1") if raw is not None else None)
        wait_s = retry_after_s if retry_after_s is not None else 1.0
        error: ServewellError
        if status == 429:
            error = Overloaded(name, max(1, math.ceil(wait_s)))
        elif status == 503:
            error = ModelUnavailable(name, version, "its upstream answered 503", wait_s)
        elif status >= 500:
            error = ModelFailed(f"{name}@{version}: its upstream answered {status}")
        else:
            error = ModelFailed(f"{name}@{version}: its upstream refused the request ({status})")
        retryable = status == 429 or status >= 500
        raise UpstreamFault(error, retryable=retryable, retry_after_s=retry_after_s)

    def _fault_of(self, fault: HttpFault, deadline: Deadline | None) -> UpstreamFault:
        """A failed exchange in servewell's words (never the fault's text beyond what
        the pool wrote: nothing the upstream sent)."""
        name, version = self.model, self.version
        if isinstance(fault, DeadlinePassed) or (deadline is not None and deadline.expired):
            return UpstreamFault(self._deadline_exceeded(deadline), retryable=False)
        if isinstance(fault, TooLarge):
            return UpstreamFault(self._too_large(), retryable=False)
        if isinstance(fault, ConnectTimeout):
            timeout_ms = self.spec.timeouts.connect_s * 1000
            return UpstreamFault(DeadlineExceeded(name, timeout_ms), retryable=True)
        if isinstance(fault, ReadTimeout):
            timeout_ms = self.spec.timeouts.read_s * 1000
            return UpstreamFault(DeadlineExceeded(name, timeout_ms), retryable=True)
        if isinstance(fault, Unreachable):
            why = "its upstream cannot be reached"
            return UpstreamFault(ModelUnavailable(name, version, why), retryable=True)
        error = ModelFailed(f"{name}@{version}: its upstream {fault}")
        return UpstreamFault(error, retryable=True)

    def _too_large(self) -> ModelFailed:
        limit = self.spec.max_response_bytes
        return ModelFailed(
            f"{self.model}@{self.version}: its upstream answered more than {limit} bytes "
            "(the spec's max_response_bytes)"
        )

    def _deadline_exceeded(self, deadline: Deadline | None) -> DeadlineExceeded:
        timeout_ms = deadline.timeout_ms if deadline else self.spec.timeouts.read_s * 1000
        return DeadlineExceeded(self.model, timeout_ms)


def _at(deadline: Deadline | None) -> float | None:
    return deadline.at if deadline is not None else None


async def _lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The body's lines (``\\n`` and a ``\\r`` before it removed) as they arrive."""
    rest = b""
    async for chunk in chunks:
        *lines, rest = (rest + chunk).split(b"\n")
        for line in lines:
            yield line.removesuffix(b"\r")
    if rest:
        yield rest.removesuffix(b"\r")


def retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` header's seconds (delta-seconds or an HTTP date), None if absent
    or unreadable; at most :data:`MAX_RETRY_AFTER_S`."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    from datetime import UTC, datetime

    if moment.tzinfo is None:
        return None
    return min(max((moment - datetime.now(UTC)).total_seconds(), 0.0), MAX_RETRY_AFTER_S)
