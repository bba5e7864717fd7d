"""One inference request as the gateway takes it: the :class:`Call` an entry point
hands over, the :class:`Codec` that speaks its protocol, the :class:`Decoded` request."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from servewell.core.deadline import Deadline
from servewell.core.inference import InferRequest, InferResponse
from servewell.core.ref import ModelRef
from servewell.serving.deployment import Deployment
from servewell.serving.prediction_rows import Answer
from servewell.serving.reply import Reply
from servewell.serving.routing import RoutedArm


class ClientDisconnected(Exception):
    """The client went away before its request body arrived, or before the model step."""


@dataclass(slots=True)
class Decoded:
    """A decoded request, and what its codec needs to encode the answer."""

    request: InferRequest
    options: Any = None
    """The codec's own (V2: the outputs to send as binary data)."""
    stream: Callable[[Any, Deployment], Reply] | None = None
    """For a request that wants its answer streamed: the reply made of the opened
    stream (``serving.text_stream``) and the deployment that answers."""


class Codec(Protocol):
    """A protocol adapter, as the gateway uses it."""

    protocol: str
    """``v2``, ``rest`` or ``openai``: the metrics label and a part of the cache key."""

    def decode(
        self, ref: ModelRef, deployment: Deployment, body: bytes, headers: dict[bytes, bytes]
    ) -> Decoded: ...

    def encode(self, decoded: Decoded, response: InferResponse, deployment: Deployment) -> Reply:
        """The answer (status 200) to a decoded request."""

    def refusal(self, exc: Exception) -> Reply:
        """The answer to a failed request (unexpected errors are logged there)."""

    def cache_view(self, body: bytes, headers: dict[bytes, bytes]) -> bytes | None:
        """The bytes of the request its response-cache key is made of (V2, REST: the
        body as sent; chat: the normalized request), or None: not cached."""


@dataclass(slots=True)
class Call:
    """One inference request as an entry point hands it over."""

    codec: Codec
    path: str
    model: str
    version: str | None
    """The version as the path spells it (None: the model's default)."""
    headers: dict[bytes, bytes]
    """Request headers by lower-case name (the first of a repeated one)."""
    client: str | None
    body: bytes = b""
    read_body: Callable[[], Awaitable[bytes]] | None = None
    """Reads the body, when it has not arrived yet (the guard runs before it is read)."""
    cache_key: str | None = None
    """The response-cache key, once computed (kept when ``try_now`` declines)."""
    request_id: str | None = None
    """The request's id, once chosen (kept when ``try_now`` fails)."""
    requested: Deadline | None = None
    """The caller's own deadline (its ``Request-Timeout``), if it sent one."""
    deadline: Deadline | None = None
    """When the answer is due, once the model is resolved: its ``timeout_ms``, or
    :attr:`requested` when that comes sooner."""
    waiting: asyncio.Task[Any] | None = None
    """The task waiting for the model, while it waits (cancelled if the client leaves)."""
    gone: bool = False
    """Whether the client went away before its answer."""
    served: Deployment | None = None
    """The deployment it was resolved to: counted in its ``in_flight`` until answered."""
    arm: RoutedArm | None = None
    """The traffic policy's arm that answers, when the model has a split and the path
    names no version."""
    answer: Answer | None = None
    """What the model was asked and answered, once it answered (the prediction log's)."""

    def client_left(self) -> None:
        """The client went away: stop waiting for the model (a request still queued
        leaves the queue; one being computed finishes, for nobody)."""
        self.gone = True
        if self.waiting is not None:
            self.waiting.cancel()
