"""OpenAI's chat completions API as a gateway codec: ``POST /v1/chat/completions``.

The body's ``model`` names the servewell model (``name``, ``name@3``, ``name@alias``);
the entry point (``http.app``) reads it before the guard runs, so keys, scopes and
rates apply per model as on every other route. :class:`ChatCodec` decodes the body
(``core.chat``: checked, sanitized) into an ``InferRequest`` for a chat model, encodes
the answer as a ``chat.completion`` (or, with ``stream: true``, as server-sent
``chat.completion.chunk`` events ending in ``data: [DONE]``), and answers errors in
OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, so the official
SDK raises its own exception classes (``BadRequestError``, ``AuthenticationError``,
``PermissionDeniedError``, ``NotFoundError``, ``RateLimitError``, ...).

Caching: only a deterministic request is cached (``temperature`` 0, or the caller's
opt-in ``X-Servewell-Cache: on``), keyed by the resolved version and the normalized
request (``ChatRequest.cache_view``); ``Cache-Control: no-cache`` bypasses it as
everywhere. Streams are never cached.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any, TypeVar

import orjson

from servewell.core.chat import ChatLimits, ChatRequest, parse_chat, to_inputs
from servewell.core.chat_signature import TEXT, is_chat_signature
from servewell.core.inference import InferRequest, InferResponse
from servewell.core.llm_cost import Usage
from servewell.core.ref import ModelRef
from servewell.errors import InvalidInput, ServewellError
from servewell.http.problems import to_reply
from servewell.http.wire import check_json, load_json
from servewell.observability import (
    RequestRecord,
    bind_request,
    current_request,
    unbind_request,
)
from servewell.serving.call import Decoded
from servewell.serving.chat_stream import StreamEnd, end_of, text_of
from servewell.serving.deployment import Deployment
from servewell.serving.pool import ModelPool
from servewell.serving.reply import Reply
from servewell.serving.text_stream import OpenedStream
from servewell.serving.token_count import TokenCounter
from servewell.settings import Settings

T = TypeVar("T")
CHAT_PATH = "/v1/chat/completions"
EVENT_STREAM = b"text/event-stream"
CACHE_OPT_IN = b"x-servewell-cache"
DONE = b"data: [DONE]\n\n"

#: The route's OpenAPI operation (``http.routes`` adds it to the schema).
CHAT_OPERATION: dict[str, Any] = {
    "tags": ["openai"],
    "summary": "Chat completions, OpenAI's API (model: a servewell model; stream: SSE)",
    "operationId": "chat_completions",
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "required": ["model", "messages"]},
                "example": {
                    "model": "story",
                    "messages": [{"role": "user", "content": "Tell me about the cat"}],
                    "temperature": 0,
                    "max_tokens": 32,
                },
            }
        },
    },
    "responses": {
        "200": {"description": "A chat.completion, or server-sent chat.completion.chunk events."}
    },
}

#: OpenAI's error ``type`` by HTTP status (the SDK picks its class by the status).
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    408: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
}


def chat_limits(settings: Settings) -> ChatLimits:
    chat = settings.chat
    return ChatLimits(
        max_tokens=chat.max_tokens,
        max_messages=chat.max_messages,
        max_text_bytes=settings.validation.max_text_bytes,
        max_control_characters=chat.max_control_characters,
    )


#: Called once per answered chat request with what it asked, the version that answered
#: (``name@3``) and its usage: where spend is counted.
UsageHook = Callable[[ChatRequest, str, Usage], None]


class ChatCodec:
    """The gateway's codec for chat completions (``serving.call.Codec``)."""

    protocol = "openai"

    def __init__(
        self, limits: ChatLimits, max_json_depth: int = 64, counter: TokenCounter | None = None
    ) -> None:
        self.limits = limits
        self.max_json_depth = max_json_depth
        self.counter = counter or TokenCounter()
        """Counts the tokens a model does not report (``serving.token_count``)."""
        self.on_usage: UsageHook | None = None
        """Told each answer's usage (:meth:`used`), when set."""
        self._last: tuple[bytes, bytes | None, ChatRequest] | None = None

    def parse(self, body: bytes, content_type: bytes | None) -> ChatRequest:
        """The checked request in ``body``; the last one parsed is kept, so the cache key
        and decoding of one request parse its body once."""
        last = self._last
        if last is not None and last[0] is body and last[1] == content_type:
            return last[2]
        check_json(content_type)
        chat = parse_chat(load_json(body, self.max_json_depth), self.limits)
        self._last = (body, content_type, chat)
        return chat

    def knowing(self, body: bytes, content_type: bytes | None, chat: ChatRequest) -> ChatCodec:
        """This codec for one request whose body the entry point parsed already: other
        requests' parses, between the entry point and decoding, cannot push it out of
        :meth:`parse`'s memory (at 64 in flight, they always did)."""
        known = object.__new__(ChatCodec)
        known.__dict__.update(self.__dict__)
        known._last = (body, content_type, chat)
        return known

    def decode(
        self, ref: ModelRef, deployment: Deployment, body: bytes, headers: dict[bytes, bytes]
    ) -> Decoded:
        chat = self.parse(body, headers.get(b"content-type"))
        signature = deployment.signature
        if not is_chat_signature(signature):
            raise InvalidInput(
                f"model '{deployment.name}' does not serve chat: its signature must take "
                "'messages' (BYTES) and give 'text' (BYTES)",
                param="model",
            )
        request = InferRequest(ref, to_inputs(chat, signature))
        return Decoded(request, chat, self._stream_reply(chat) if chat.stream else None)

    def encode(self, decoded: Decoded, response: InferResponse, deployment: Deployment) -> Reply:
        """A whole answer: a ``chat.completion``, or for a streamed request (a fallback's
        answer, or a model that does not stream) all its events at once."""
        chat: ChatRequest = decoded.options
        text = text_of(response.outputs[TEXT])
        end = end_of(response.outputs)
        model = f"{response.model}@{response.version}"
        usage = self.used(chat, model, text, end)
        if not chat.stream:
            return Reply.json(200, _completion(model, text, end.finish_reason, usage))
        cid = _completion_id()
        events = [_chunk(cid, model, {"role": "assistant", "content": text}, None)]
        events.append(_chunk(cid, model, {}, end.finish_reason))
        if chat.include_usage:
            events.append(_usage_chunk(cid, model, usage))
        return Reply(200, b"".join(events) + DONE, EVENT_STREAM, [NO_CACHE])

    def refusal(self, exc: Exception) -> Reply:
        return openai_error(exc)

    def cache_view(self, body: bytes, headers: dict[bytes, bytes]) -> bytes | None:
        try:
            chat = self.parse(body, headers.get(b"content-type"))
        except ServewellError:
            return None  # decoding says what is wrong
        opted_in = headers.get(CACHE_OPT_IN, b"").strip().lower() == b"on"
        return chat.cache_view(opted_in)

    def used(self, chat: ChatRequest, model: str, text: str, end: StreamEnd) -> Usage:
        """The one place an answer's usage is known (whole or streamed): the model's
        own counts (an upstream's ``usage``), else counted here; :attr:`on_usage` is
        told."""
        prompt, completion = end.prompt_tokens, end.completion_tokens
        usage = Usage(
            self.counter.count_prompt(chat.messages) if prompt is None else prompt,
            self.counter.count(text) if completion is None else completion,
        )
        if self.on_usage is not None:
            self.on_usage(chat, model, usage)
        return usage

    def _stream_reply(self, chat: ChatRequest) -> Callable[[OpenedStream, Deployment], Reply]:
        def reply(opened: OpenedStream, deployment: Deployment) -> Reply:
            model = f"{deployment.name}@{deployment.number}"
            events = self._events(chat, opened, model, _completion_id(), current_request())
            return Reply(200, b"", EVENT_STREAM, [NO_CACHE], events)

        return reply

    async def _events(
        self,
        chat: ChatRequest,
        opened: OpenedStream,
        model: str,
        cid: str,
        record: RequestRecord | None,
    ) -> AsyncIterator[bytes]:
        """The stream's server-sent events: a chunk per piece as it arrives, the finish
        reason, the usage when asked for, ``[DONE]``; a failure midway ends it with an
        ``error`` event (the status is long sent). Sent after the gateway has answered:
        the request's record is bound again while a failure is logged and answered (its
        request id) and while its usage is told."""
        pieces: list[str] = []
        try:
            yield _chunk(cid, model, {"role": "assistant", "content": ""}, None)
            try:
                async for piece in opened:
                    pieces.append(piece)
                    yield _chunk(cid, model, {"content": piece}, None)
            except Exception as exc:
                yield b"data: " + _as_request(record, partial(openai_error, exc)).body + b"\n\n"
                return
        finally:
            await opened.aclose()  # the client left, or the stream ended: stop reading
        end = opened.end
        usage = _as_request(record, partial(self.used, chat, model, "".join(pieces), end))
        yield _chunk(cid, model, {}, end.finish_reason)
        if chat.include_usage:
            yield _usage_chunk(cid, model, usage)
        yield DONE


def _as_request(record: RequestRecord | None, work: Callable[[], T]) -> T:
    """``work()`` with ``record`` the current request again (a stream's events are
    sent after the gateway unbound it)."""
    token = bind_request(record) if record is not None else None
    try:
        return work()
    finally:
        if token is not None:
            unbind_request(token)


def chat_models(pool: ModelPool) -> list[dict[str, Any]]:
    """OpenAI's model list: each chat model served, by name and by ``name@version``."""
    data = []
    for deployment in sorted(pool.deployments(), key=lambda d: (d.name, d.number)):
        if not is_chat_signature(deployment.signature):
            continue
        created = int(deployment.version.created_at.timestamp())
        if _is_default(pool, deployment):
            data.append(_model_entry(deployment.name, created))
        data.append(_model_entry(f"{deployment.name}@{deployment.number}", created))
    return data


def _is_default(pool: ModelPool, deployment: Deployment) -> bool:
    try:
        return pool.get(deployment.name) is deployment
    except ServewellError:
        return False


def _model_entry(name: str, created: int) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": created, "owned_by": "servewell"}


def openai_error(exc: Exception) -> Reply:
    """An error as OpenAI's API answers one: the status and headers servewell gives it
    (``http.problems``), the body in OpenAI's shape."""
    reply = to_reply(exc, v2=False)
    body = orjson.loads(reply.body)
    detail = body.get("detail")
    status = reply.status
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    error = {
        "message": body.get("error", "the request failed"),
        "type": kind,
        "param": detail.get("param") if isinstance(detail, dict) else None,
        "code": body.get("code"),
    }
    reply.body = orjson.dumps({"error": error})
    return reply


# --- answers ---------------------------------------------------------------------------

NO_CACHE = (b"cache-control", b"no-cache")


def _completion(model: str, text: str, finish: str, usage: Usage) -> dict[str, Any]:
    message = {"role": "assistant", "content": text}
    return {
        "id": _completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage.to_dict(),
    }


def _completion_id() -> str:
    """``chatcmpl-`` and the request id (the access line and the logs have it too)."""
    record = current_request()
    return f"chatcmpl-{record.request_id if record is not None else time.time_ns()}"


def _chunk(cid: str, model: str, delta: dict[str, Any], finish: str | None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return _event(_chunk_head(cid, model) | {"choices": [choice]})


def _usage_chunk(cid: str, model: str, usage: Usage) -> bytes:
    return _event(_chunk_head(cid, model) | {"choices": [], "usage": usage.to_dict()})


def _chunk_head(cid: str, model: str) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }


def _event(document: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(document) + b"\n\n"
