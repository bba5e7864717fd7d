"""The entry point of ``POST /v1/chat/completions``: the gateway call made of a chat
request. Its model is named in the body, so the body is read first (within
``server.max_body_bytes``, as every body); the guard then runs as on every inference
route, for that model.

:func:`choose_model` is where a request's model is chosen before it is resolved: the
model the body names (an alias pinned to the version it serves here), or, when it
names a route group, the model the group's rules choose (``serving/llm_calls``, which
also counts the prompt and sets the budget and token-rate check the gateway awaits once
the guard admitted the caller) — for callers whose key the guard knows only, so that a
caller without a valid key costs no prompt count or classifier call before its 401. A
body that names no model well is refused after the guard (400, from the codec).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

import orjson

from servewell.core.chat import ChatRequest, peek_model
from servewell.core.ref import ModelRef
from servewell.errors import NotFound, ServewellError
from servewell.http.chat import CHAT_PATH, ChatCodec
from servewell.http.wire import BodyBudget, Receive, Scope, read_body
from servewell.serving.admission import API_KEY, AUTHORIZATION, Admission
from servewell.serving.call import Call
from servewell.serving.llm_calls import LlmCalls
from servewell.serving.pool import ModelPool


def choose_model(ref: ModelRef, body: bytes, pool: ModelPool) -> tuple[str, str | None]:
    """The model name and version (as a path spells it; None: the default, or its
    traffic route) that answer a chat request for ``ref``."""
    if ref.alias is None:
        return ref.name, None if ref.version is None else str(ref.version)
    held = pool.held.get(ref)
    if held is None:
        raise NotFound(f"model '{ref}' is not served here", model=ref.name, param="model")
    return ref.name, str(held.number)


async def chat_call(
    scope: Scope,
    receive: Receive,
    codec: ChatCodec,
    pool: ModelPool,
    limit_bytes: int,
    budget: BodyBudget,
    llm: LlmCalls | None = None,
    admission: Admission | None = None,
) -> Call:
    """The gateway call of a chat request (body read; refused later if it must be)."""
    client = scope.get("client")
    headers = dict(reversed(scope["headers"]))  # the first of a repeated header
    call = Call(codec, CHAT_PATH, "", None, headers, client[0] if client else None)
    try:
        body = await read_body(scope, receive, limit_bytes, budget)
    except ServewellError as exc:
        call.read_body = _refuse(exc)
        return call
    call.body = body
    chat = _parsed(codec, body, headers)
    if chat is not None:
        call.codec = codec = codec.knowing(body, headers.get(b"content-type"), chat)
    ref = chat.model if chat is not None else _peek(body)
    if ref is None:  # the codec says what is wrong, once the caller is admitted
        call.read_body = _refuse_with_codec(codec, body, headers)
        return call
    try:
        if llm is not None and chat is not None and _known(admission, headers, call.client):
            ref = await _llm_steps(call, llm, chat, ref)
        call.model, call.version = choose_model(ref, body, pool)
    except ServewellError as exc:
        call.model = ref.name
        call.read_body = _refuse(exc)
    return call


def _parsed(codec: ChatCodec, body: bytes, headers: dict[bytes, bytes]) -> ChatRequest | None:
    """The checked request, or None: a body the codec refuses is left for it to refuse,
    after the guard."""
    try:
        return codec.parse(body, headers.get(b"content-type"))
    except ServewellError:
        return None


def _peek(body: bytes) -> ModelRef | None:
    """The model a body the codec refuses names, if it names one well (the guard's)."""
    try:
        return peek_model(orjson.loads(body))
    except orjson.JSONDecodeError:
        return None


async def _llm_steps(call: Call, llm: LlmCalls, chat: ChatRequest, ref: ModelRef) -> ModelRef:
    """Route the prompt (the model to resolve), and arm the budget check."""
    opened, chosen = await llm.open(ref, chat)
    call.llm = opened
    call.admitted = partial(llm.admit, opened)
    return chosen


def _known(admission: Admission | None, headers: dict[bytes, bytes], client: str | None) -> bool:
    """Whether the caller's key is one the guard knows (always, with keys off)."""
    if admission is None:
        return True
    credentials = (headers.get(AUTHORIZATION), headers.get(API_KEY))
    return admission.knows(credentials, client or "")


def _refuse(exc: ServewellError) -> Callable[[], Awaitable[bytes]]:
    async def refuse() -> bytes:
        raise exc

    return refuse


def _refuse_with_codec(
    codec: ChatCodec, body: bytes, headers: dict[bytes, bytes]
) -> Callable[[], Awaitable[bytes]]:
    async def refuse() -> bytes:
        codec.parse(body, headers.get(b"content-type"))  # raises, naming the parameter
        raise NotFound("name the model in 'model'", param="model")  # pragma: no cover

    return refuse
