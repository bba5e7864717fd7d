"""The signature of a chat model: messages in, text out.

Every chat model has it, whatever answers it: a remote ``openai``-kind model, or a local
Python model that takes messages and returns text. Each row of ``messages`` is one
conversation: a JSON array of chat messages (``[{"role": "user", "content": "hi"}]``),
as UTF-8 bytes; each row of ``text`` is that conversation's completion.
"""

from __future__ import annotations

from functools import cache

from servewell.core.signature import Signature, TensorSpec

MESSAGES = "messages"
TEXT = "text"


@cache
def chat_signature() -> Signature:
    """``messages``: BYTES [-1] (one JSON array of messages a row) -> ``text``: BYTES [-1].

    Built once (a frozen value): :func:`is_chat_signature` runs on every chat request,
    and building the pydantic specs cost ~30 µs each time."""
    return Signature(
        inputs=(TensorSpec(name=MESSAGES, datatype="BYTES", shape=(-1,)),),
        outputs=(TensorSpec(name=TEXT, datatype="BYTES", shape=(-1,)),),
    )


#: Inputs a chat model may take besides ``messages``, one value a row, which the
#: OpenAI-compatible endpoint fills from the request's parameters (``core.chat``).
PARAMETERS = {"temperature": "FP32", "max_tokens": "INT64"}


#: What :func:`is_chat_signature` found, by signature (held, so its id is not reused).
_JUDGED: dict[int, tuple[Signature, bool]] = {}
_MOST_JUDGED = 256


def is_chat_signature(signature: Signature) -> bool:
    """Whether ``signature`` takes messages and gives text, as :func:`chat_signature`
    (and, if it likes, the request's :data:`PARAMETERS`). Judged once per signature
    (every chat request asks; comparing the specs cost ~9 µs of each)."""
    judged = _JUDGED.get(id(signature))
    if judged is not None and judged[0] is signature:
        return judged[1]
    if len(_JUDGED) >= _MOST_JUDGED:  # deployments come and go: forget the old ones
        _JUDGED.clear()
    verdict = _judge(signature)
    _JUDGED[id(signature)] = (signature, verdict)
    return verdict


def _judge(signature: Signature) -> bool:
    (messages,) = chat_signature().inputs
    others = [spec for spec in signature.inputs if spec.name != MESSAGES]
    return (
        messages in signature.inputs
        and all(PARAMETERS.get(spec.name) == spec.datatype for spec in others)
        and any(spec.name == TEXT and spec.datatype == "BYTES" for spec in signature.outputs)
    )


@cache
def openai_signature() -> Signature:
    """The chat signature with the request's parameters in and the answer's finish
    reason and usage out: what an ``openai`` model serves with."""
    rows = (-1,)
    return Signature(
        inputs=(
            TensorSpec(name=MESSAGES, datatype="BYTES", shape=rows),
            TensorSpec(name="temperature", datatype="FP32", shape=rows),
            TensorSpec(name="max_tokens", datatype="INT64", shape=rows),
        ),
        outputs=(
            TensorSpec(name=TEXT, datatype="BYTES", shape=rows),
            TensorSpec(name="finish_reason", datatype="BYTES", shape=rows),
            TensorSpec(name="prompt_tokens", datatype="INT64", shape=rows),
            TensorSpec(name="completion_tokens", datatype="INT64", shape=rows),
        ),
    )
