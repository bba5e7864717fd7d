"""The HTTP client of one remote model: a pooled connection to its upstream, retried,
bounded by the request's deadline, its failures in servewell's words.

One :class:`Upstream` per remote deployment (``core/remote_spec.py`` says where and
how), its pool aiohttp's behind httpx's API (``serving/transport.py`` says why)::

    Upstream(spec, model, version, *, breaker=None, on_retry=lambda: None)
    upstream.load() -> None            # reads the credential (env var); InvalidConfig if unset
    await upstream.start() -> None     # opens the pool (one httpx.AsyncClient)
    await upstream.send(build, deadline) -> httpx.Response         # read, status 2xx
    async with upstream.stream(build, deadline) as response: ...   # status 2xx, body unread
    await upstream.close() -> None

``build`` is a :data:`RequestBuilder`: ``lambda client: client.build_request("POST",
"/v1/chat/completions", json=body)`` (paths are relative to the spec's ``url``; the
client already carries ``Authorization: Bearer <credential>``).

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

import asyncio
import math
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from email.utils import parsedate_to_datetime
from functools import partial
from typing import TYPE_CHECKING

import httpx

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
from servewell.serving.retry import Backoff, call_with_retries
from servewell.serving.transport import AiohttpTransport, ResponseTooLarge

if TYPE_CHECKING:
    from servewell.serving.breaker import CircuitBreaker

RequestBuilder = Callable[[httpx.AsyncClient], httpx.Request]

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
        self._headers: dict[str, str] = {}
        self._client: httpx.AsyncClient | None = None

    def load(self) -> None:
        """Read the credential from the environment variable the spec names."""
        env = self.spec.credential_env
        if env is None:
            return
        value = os.environ.get(env, "")
        if not value:
            raise InvalidConfig(
                f"remote model '{self.model}': environment variable {env} (its upstream "
                "credential) is not set"
            )
        self._headers = {"Authorization": f"Bearer {value}"}

    async def start(self) -> None:
        transport = AiohttpTransport(self.spec.max_connections, self.spec.max_response_bytes)
        transport.open()
        self._client = httpx.AsyncClient(
            transport=transport,
            base_url=self.spec.base_url,
            headers=self._headers,
            timeout=self._timeout(None),
            follow_redirects=False,
            trust_env=False,
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send(self, build: RequestBuilder, deadline: Deadline | None) -> httpx.Response:
        """The upstream's 2xx answer to ``build``'s request, its body read."""
        return await self._retried(partial(self._attempt, build, deadline, False), deadline)

    @asynccontextmanager
    async def stream(
        self, build: RequestBuilder, deadline: Deadline | None
    ) -> AsyncIterator[httpx.Response]:
        """The upstream's 2xx answer to ``build``'s request, its body still to read
        (``response.aiter_lines()``); closed on exit. Reading it past ``deadline`` is
        DeadlineExceeded, a connection dropped while reading it ModelFailed."""
        attempt = partial(self._attempt, build, deadline, True)
        response = await self._retried(attempt, deadline)
        try:
            async with asyncio.timeout_at(deadline.at if deadline else None):
                try:
                    yield response
                except httpx.TransportError as exc:
                    raise self._fault_of(exc, deadline).error from exc
                except ResponseTooLarge:
                    raise self._too_large() from None
        except TimeoutError as exc:
            raise self._deadline_exceeded(deadline) from exc
        finally:
            await response.aclose()

    async def _retried(
        self, attempt: Callable[[], Awaitable[httpx.Response]], deadline: Deadline | None
    ) -> httpx.Response:
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

    async def _attempt(
        self, build: RequestBuilder, deadline: Deadline | None, stream: bool
    ) -> httpx.Response:
        """One exchange with the upstream, admitted and counted by the breaker."""
        if deadline is not None and deadline.expired:
            raise self._deadline_exceeded(deadline)
        breaker = self.breaker
        ticket = breaker.admit() if breaker is not None else 0
        try:
            response = await self._exchange(build, deadline, stream)
        except BaseException as exc:
            if breaker is not None:
                breaker.settle(ticket, exc)
            raise
        if breaker is not None:
            breaker.succeeded(ticket)
        return response

    async def _exchange(
        self, build: RequestBuilder, deadline: Deadline | None, stream: bool
    ) -> httpx.Response:
        client = self._client
        if client is None:
            raise ModelUnavailable(self.model, self.version, "not loaded")
        request = build(client)
        remaining_s = deadline.remaining_s() if deadline is not None else None
        request.extensions["timeout"] = self._timeout(remaining_s).as_dict()
        try:
            async with asyncio.timeout_at(deadline.at if deadline else None):
                response = await client.send(request, stream=True)
                try:
                    self._check_status(response)
                    if not stream:
                        await response.aread()
                except BaseException:
                    await response.aclose()
                    raise
        except (httpx.TransportError, TimeoutError) as exc:
            raise self._fault_of(exc, deadline) from exc
        except ResponseTooLarge:
            raise UpstreamFault(self._too_large(), retryable=False) from None
        return response

    def _timeout(self, remaining_s: float | None) -> httpx.Timeout:
        """The spec's timeouts, none longer than what is left of the deadline."""
        bound = math.inf if remaining_s is None else max(remaining_s, 0.001)
        timeouts = self.spec.timeouts
        return httpx.Timeout(
            connect=min(timeouts.connect_s, bound),
            read=min(timeouts.read_s, bound),
            write=min(timeouts.read_s, bound),
            pool=None if remaining_s is None else bound,
        )

    def _check_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        name, version = self.model, self.version
        retry_after_s = retry_after(response.headers.get("retry-after"))
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

    def _fault_of(self, exc: BaseException, deadline: Deadline | None) -> UpstreamFault:
        """A transport error or timeout, in servewell's words (never its text: it may
        quote what the upstream sent)."""
        name, version = self.model, self.version
        if deadline is not None and (deadline.expired or isinstance(exc, TimeoutError)):
            return UpstreamFault(self._deadline_exceeded(deadline), retryable=False)
        if isinstance(exc, httpx.TimeoutException | TimeoutError):
            timeout_ms = self.spec.timeouts.read_s * 1000
            return UpstreamFault(DeadlineExceeded(name, timeout_ms), retryable=True)
        if isinstance(exc, httpx.ConnectError):
            why = "its upstream cannot be reached"
            return UpstreamFault(ModelUnavailable(name, version, why), retryable=True)
        how = type(exc).__name__
        error = ModelFailed(f"{name}@{version}: its upstream dropped the connection ({how})")
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
