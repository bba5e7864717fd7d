"""A chat completion body checked and normalized: what the cache key is made of, what
the model gets, and each refusal naming its parameter."""

from __future__ import annotations

from typing import Any

import pytest

from servewell.core.chat import ChatLimits, parse_chat, to_inputs
from servewell.core.chat_signature import chat_signature, is_chat_signature
from servewell.core.signature import Signature
from servewell.errors import InvalidInput

LIMITS = ChatLimits(max_tokens=100, max_messages=3, max_text_bytes=50, max_control_characters=1)


def _body(**more: Any) -> dict[str, Any]:
    return {"model": "story", "messages": [{"role": "user", "content": "hi"}], **more}


def test_spellings_of_one_request_share_a_cache_view() -> None:
    plain = parse_chat(_body(temperature=0), LIMITS)
    parts = parse_chat(
        _body(
            model="story@1",
            temperature=0.0,
            messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            user="someone",
        ),
        LIMITS,
    )
    assert plain.cache_view(False) == parts.cache_view(False)
    assert plain.cache_view(False) != parse_chat(
        _body(temperature=0, max_tokens=3), LIMITS
    ).cache_view(False)


def test_only_deterministic_or_opted_in_requests_have_a_view() -> None:
    assert parse_chat(_body(), LIMITS).cache_view(False) is None  # temperature 1 by default
    assert parse_chat(_body(temperature=0.7), LIMITS).cache_view(True) is not None
    assert parse_chat(_body(temperature=0, stream=True), LIMITS).cache_view(True) is None


def test_control_characters_within_the_limit_are_removed() -> None:
    chat = parse_chat(_body(messages=[{"role": "user", "content": "a\x00b\u200bc\n"}]), LIMITS)
    assert chat.messages == (("user", "abc\n"),)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([], None),
        (_body(model=""), "model"),
        (_body(model="bad name"), "model"),
        (_body(messages=[]), "messages"),
        (_body(messages=[{"role": "user", "content": "x"}] * 4), "messages"),
        (_body(messages=[{"role": "tool", "content": "x"}]), "messages[0].role"),
        (_body(messages=[{"role": "user", "content": 3}]), "messages[0].content"),
        (
            _body(messages=[{"role": "user", "content": [{"type": "image_url"}]}]),
            "messages[0].content",
        ),
        (_body(messages=[{"role": "user", "content": "x" * 51}]), "messages"),
        (_body(messages=[{"role": "user", "content": "\x00\x01"}]), "messages"),
        (_body(n=2), "n"),
        (_body(max_tokens=0), "max_tokens"),
        (_body(max_completion_tokens=101), "max_completion_tokens"),
        (_body(temperature="hot"), "temperature"),
        (_body(stream="yes"), "stream"),
    ],
)
def test_each_bad_body_is_refused_naming_its_parameter(body: Any, param: str | None) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_chat(body, LIMITS)
    assert refused.value.detail.get("param") == param


def test_the_model_gets_the_parameters_its_signature_takes() -> None:
    chat = parse_chat(_body(temperature=0.5, max_tokens=7), LIMITS)
    assert set(to_inputs(chat, chat_signature())) == {"messages"}
    wider = Signature.from_dict(
        {
            "inputs": [
                {"name": "messages", "datatype": "BYTES", "shape": [-1]},
                {"name": "temperature", "datatype": "FP32", "shape": [-1]},
                {"name": "max_tokens", "datatype": "INT64", "shape": [-1]},
            ],
            "outputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}],
        }
    )
    assert is_chat_signature(wider)
    inputs = to_inputs(chat, wider)
    assert (float(inputs["temperature"][0]), int(inputs["max_tokens"][0])) == (0.5, 7)
    assert inputs["messages"][0] == b'[{"role":"user","content":"hi"}]'


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("top_p", 0.9),
        ("top_p", True),
        ("stop", ["\n"]),
        ("stop", "END"),
        ("seed", 7),
        ("presence_penalty", 0.5),
        ("frequency_penalty", 1),
        ("logprobs", True),
        ("logit_bias", {"50256": -100}),
        ("response_format", {"type": "json_object"}),
        ("tools", [{"type": "function", "function": {"name": "f"}}]),
        ("tool_choice", "required"),
        ("store", True),
        ("top_k", 40),  # not OpenAI's at all: refused too, not dropped
    ],
)
def test_a_parameter_servewell_would_ignore_is_refused_naming_it(param: str, value: Any) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_chat(_body(**{param: value}), LIMITS)
    assert refused.value.detail.get("param") == param
    assert "honours are model, messages, temperature" in refused.value.message


def test_parameters_set_to_what_changes_nothing_are_taken() -> None:
    no_ops = {
        "n": 1,
        "top_p": 1,
        "presence_penalty": 0,
        "frequency_penalty": 0.0,
        "logprobs": False,
        "logit_bias": {},
        "stop": [],
        "response_format": {"type": "text"},
        "tools": [],
        "tool_choice": "none",
        "seed": None,
        "user": "someone",
        "metadata": {"team": "a"},
    }
    chat = parse_chat(_body(temperature=0, **no_ops), LIMITS)
    assert chat.cache_view(False) == parse_chat(_body(temperature=0), LIMITS).cache_view(False)
