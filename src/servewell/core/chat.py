"""A chat completion request as OpenAI's API spells it, checked and normalized once.

:func:`parse_chat` turns a ``POST /v1/chat/completions`` body into a :class:`ChatRequest`
or raises InvalidInput naming the parameter (``param``: ``messages[2].role``), so the
endpoint answers 400 in OpenAI's error shape. Prompts pass the sanitizing limits here:
at most ``chat.max_messages`` messages, ``validation.max_text_bytes`` of text in all,
``chat.max_control_characters`` control characters (the rest removed: NFC, no control
or format characters, ``core.sanitize``), ``max_tokens`` up to ``chat.max_tokens``.
A parameter servewell does not honour is refused, not dropped (:data:`HONOURED`,
:data:`NO_OP_VALUES`): a caller who asks for ``tools`` or ``response_format`` learns
that the answer would ignore them.

A chat model is one whose signature is the chat signature (``core.chat_signature``:
``messages`` in, each row one JSON array of ``{"role", "content"}`` objects, ``text``
out); it may also take ``temperature`` (FP32) and ``max_tokens`` (INT64), one per row,
which the request's parameters fill (:func:`to_inputs`), and give ``finish_reason``,
``prompt_tokens`` and ``completion_tokens``, which the answer then states.

:meth:`ChatRequest.cache_view` is the one place a request is normalized for the
response cache: the parameters that change the answer, in a canonical JSON spelling;
None when the answer is not deterministic (temperature above 0 and no opt-in).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from servewell.core.chat_signature import MESSAGES
from servewell.core.ref import ModelRef
from servewell.core.sanitize import count_control_characters, normalize_text
from servewell.core.signature import Signature
from servewell.errors import InvalidInput, InvalidReference

TEMPERATURE = "temperature"
MAX_TOKENS = "max_tokens"
ROLES = frozenset({"system", "developer", "user", "assistant"})
#: A request's temperature when it names none (OpenAI's default).
DEFAULT_TEMPERATURE = 1.0
#: The parameters servewell honours: the model gets them, or the answer follows them.
HONOURED = (
    "model",
    "messages",
    "temperature",
    "max_tokens",
    "max_completion_tokens",
    "n",
    "stream",
    "stream_options",
)
#: Any value is accepted: informational, it changes no answer.
ANY = None
#: The one list of parameters servewell takes without honouring them: each with the
#: values that change nothing (OpenAI's defaults, or what is moot without tools), or
#: :data:`ANY`. Every other value, and every other parameter, is a 400 naming it.
#: ``null`` is always taken as not set.
NO_OP_VALUES: dict[str, tuple[Any, ...] | None] = {
    "user": ANY,
    "safety_identifier": ANY,
    "metadata": ANY,
    "prompt_cache_key": ANY,
    "service_tier": ("auto", "default"),
    "store": (False,),
    "top_p": (1,),
    "presence_penalty": (0,),
    "frequency_penalty": (0,),
    "logprobs": (False,),
    "top_logprobs": (0,),
    "logit_bias": ({},),
    "stop": ([],),
    "response_format": ({"type": "text"},),
    "modalities": (["text"],),
    "tools": ([],),
    "tool_choice": ("none", "auto"),
    "parallel_tool_calls": (True, False),
    "functions": ([],),
    "function_call": ("none", "auto"),
}


@dataclass(frozen=True, slots=True)
class ChatLimits:
    """The limits of ``settings.chat`` and ``validation.max_text_bytes``."""

    max_tokens: int = 4096
    max_messages: int = 256
    max_text_bytes: int = 100_000
    max_control_characters: int = 0


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: ModelRef
    messages: tuple[tuple[str, str], ...]
    """(role, content) pairs, content normalized."""
    temperature: float
    max_tokens: int | None
    stream: bool = False
    include_usage: bool = False
    """``stream_options.include_usage``: a last chunk with the usage."""

    @property
    def is_deterministic(self) -> bool:
        return self.temperature == 0

    def messages_json(self) -> bytes:
        """The one ``messages`` row the model gets."""
        return orjson.dumps([{"role": role, "content": text} for role, text in self.messages])

    def cache_view(self, opted_in: bool) -> bytes | None:
        """The request's cache-key bytes: what changes the answer, canonically spelt
        (not the model's spelling: an alias and its version share entries); None
        when the answer may differ each time (temperature above 0, not ``opted_in``)
        or it is streamed."""
        if self.stream or not (self.is_deterministic or opted_in):
            return None
        view = {
            "messages": self.messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        return orjson.dumps(view, option=orjson.OPT_SORT_KEYS)


def peek_model(document: Any) -> ModelRef | None:
    """The model a parsed body names, if it names one well (the guard needs it before
    the body is checked; :func:`parse_chat` says what is wrong otherwise)."""
    if not isinstance(document, dict) or not isinstance(document.get("model"), str):
        return None
    try:
        return ModelRef.parse(document["model"])
    except InvalidReference:
        return None


def parse_chat(document: Any, limits: ChatLimits) -> ChatRequest:
    """The checked request in a parsed body; InvalidInput naming the parameter."""
    if not isinstance(document, dict):
        raise InvalidInput("the request body must be a JSON object")
    _refuse_unhonoured(document)
    model = _model(document.get("model"))
    messages = _messages(document.get("messages"), limits)
    n = document.get("n")
    if n is not None and n != 1:
        raise _invalid("n", "only n=1 is supported: one choice per request")
    stream = _optional(document, "stream", bool, False)
    options = _optional(document, "stream_options", dict, {})
    return ChatRequest(
        model=model,
        messages=messages,
        temperature=_number(document, "temperature", 0.0, 2.0, DEFAULT_TEMPERATURE),
        max_tokens=_max_tokens(document, limits.max_tokens),
        stream=stream,
        include_usage=options.get("include_usage") is True,
    )


def to_inputs(request: ChatRequest, signature: Signature) -> dict[str, Any]:
    """The model's inputs: one ``messages`` row, and the parameters its signature takes."""
    inputs: dict[str, Any] = {MESSAGES: np.array([request.messages_json()], dtype=object)}
    names = {spec.name for spec in signature.inputs}
    if TEMPERATURE in names:
        inputs[TEMPERATURE] = np.array([request.temperature], dtype=np.float32)
    if MAX_TOKENS in names:
        asked = request.max_tokens if request.max_tokens is not None else 0
        inputs[MAX_TOKENS] = np.array([asked], dtype=np.int64)
    return inputs


# --- the checks ------------------------------------------------------------------------


def _invalid(param: str, message: str) -> InvalidInput:
    return InvalidInput(f"'{param}': {message}", param=param)


def _refuse_unhonoured(document: dict[str, Any]) -> None:
    """InvalidInput naming the first parameter set to a value servewell would ignore."""
    for name, value in document.items():
        if name in HONOURED or value is None:
            continue
        if name not in NO_OP_VALUES:
            raise _invalid(name, f"servewell does not honour it; {_HONOURED_TEXT}")
        allowed = NO_OP_VALUES[name]
        if allowed is not ANY and not any(_same(value, no_op) for no_op in allowed):
            spelt = " or ".join(orjson.dumps(no_op).decode() for no_op in allowed)
            raise _invalid(
                name, f"servewell does not honour it (only {spelt} is taken); {_HONOURED_TEXT}"
            )


_HONOURED_TEXT = "the parameters it honours are " + ", ".join(HONOURED)


def _same(value: Any, no_op: Any) -> bool:
    """``value`` is ``no_op`` (``true`` is not ``1``)."""
    return isinstance(value, bool) == isinstance(no_op, bool) and value == no_op


def _model(value: Any) -> ModelRef:
    if not isinstance(value, str) or not value:
        raise _invalid("model", "name the servewell model: 'name', 'name@3' or 'name@alias'")
    try:
        return ModelRef.parse(value)
    except InvalidReference as exc:
        raise _invalid("model", exc.message) from None


def _messages(value: Any, limits: ChatLimits) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list) or not value:
        raise _invalid("messages", "a non-empty list of {'role', 'content'} objects is required")
    if len(value) > limits.max_messages:
        raise _invalid("messages", f"{len(value)} messages; at most {limits.max_messages}")
    messages, size, controls = [], 0, 0
    for index, message in enumerate(value):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise _invalid(where, "must be an object with 'role' and 'content'")
        role = message.get("role")
        if role not in ROLES:
            allowed = ", ".join(sorted(ROLES))
            raise _invalid(
                f"{where}.role", f"{role!r} is not a role this endpoint takes ({allowed})"
            )
        text = _content(message.get("content"), f"{where}.content")
        size += len(text.encode("utf-8"))
        controls += count_control_characters(text)
        messages.append((str(role), normalize_text(text)))
    if size > limits.max_text_bytes:
        raise _invalid("messages", f"{size} bytes of text; at most {limits.max_text_bytes}")
    if controls > limits.max_control_characters:
        raise _invalid(
            "messages",
            f"{controls} control characters; at most {limits.max_control_characters}",
        )
    return tuple(messages)


def _content(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts: text only
        texts = []
        for part in value:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise _invalid(where, "only text content parts are supported")
            if not isinstance(part.get("text"), str):
                raise _invalid(where, "a text part needs a 'text' string")
            texts.append(part["text"])
        return "".join(texts)
    raise _invalid(where, "must be a string (or a list of text parts)")


def _optional(document: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    value = document.get(name)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _invalid(name, f"must be {'an' if kind is int else 'a'} {kind.__name__}")
    return value


def _number(
    document: dict[str, Any], name: str, low: float, high: float, default: float | None
) -> Any:
    value = document.get(name)
    if value is None:
        return default
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
        raise _invalid(name, f"must be a number from {low:g} to {high:g}")
    return float(value)


def _max_tokens(document: dict[str, Any], largest: int) -> int | None:
    for name in ("max_completion_tokens", MAX_TOKENS):
        value = document.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= largest:
            raise _invalid(name, f"must be a whole number from 1 to {largest}")
        return int(value)
    return None
