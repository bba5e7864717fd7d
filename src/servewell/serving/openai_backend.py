"""A remote ``openai``-kind model: calls to an OpenAI-compatible upstream's
``/v1/chat/completions`` (OpenAI, vLLM, llama.cpp's server, Ollama, another servewell).

Every call goes through the deployment's :class:`~servewell.serving.upstream.Upstream`
(pooled connections, the breaker, retries with backoff or ``Retry-After`` within the
deadline, errors in servewell's words; the credential from the environment variable the
spec names, never logged). Each row of ``messages`` is one upstream request, the rows
of a batch sent at once; ``temperature`` and ``max_tokens`` go along when the signature
takes them (``core.chat_signature.openai_signature`` does). The answer's ``text``,
``finish_reason`` and the upstream's ``usage`` (``prompt_tokens``, ``completion_tokens``:
-1 when it sent none, and the endpoint counts them) are the outputs, those the signature declares.

:meth:`OpenAIBackend.stream` passes a one-row request through as the upstream streams
it (``stream: true``, with ``stream_options.include_usage``): each ``delta.content`` as
it arrives, the finish reason and usage at the end; closing the stream closes the
upstream's response, so a client that goes away stops the read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import numpy as np
import orjson

from servewell.core.chat_signature import MESSAGES, TEXT
from servewell.core.deadline import Deadline
from servewell.core.remote_spec import RemoteSpec
from servewell.core.signature import Signature
from servewell.errors import InvalidInput, ModelFailed
from servewell.serving.backend import UpstreamBackend
from servewell.serving.chat_stream import StreamEnd
from servewell.serving.upstream import Upstream

Array = np.ndarray[Any, Any]
COMPLETIONS = "/v1/chat/completions"
UNKNOWN = -1
"""A token count the upstream did not report."""


class OpenAIBackend(UpstreamBackend):
    """Serves one ``openai``-kind remote model version through its upstream."""

    platform = "remote_openai"

    def __init__(self, spec: RemoteSpec, signature: Signature, model: str, version: int) -> None:
        super().__init__(spec, signature, model, version)
        self._outputs = frozenset(output.name for output in signature.outputs)

    async def predict(
        self, inputs: Mapping[str, Array], deadline: Deadline | None
    ) -> dict[str, Array]:
        """Each row's completion, the rows' requests sent at once."""
        bodies = [self._body(inputs, row, stream=False) for row in range(len(inputs[MESSAGES]))]
        if len(bodies) == 1:  # nearly every call: no task to make for it
            answers = [await self._complete(bodies[0], deadline)]
        else:
            answers = await asyncio.gather(*(self._complete(body, deadline) for body in bodies))
        columns = list(zip(*answers, strict=True)) if answers else [(), (), (), ()]
        outputs = {
            TEXT: np.array(columns[0], dtype=object),
            "finish_reason": np.array(columns[1], dtype=object),
            "prompt_tokens": np.array(columns[2], dtype=np.int64),
            "completion_tokens": np.array(columns[3], dtype=np.int64),
        }
        return {name: array for name, array in outputs.items() if name in self._outputs}

    async def stream(
        self, inputs: Mapping[str, Array], deadline: Deadline | None
    ) -> UpstreamStream:
        """The one row's completion as the upstream streams it."""
        if len(inputs[MESSAGES]) != 1:
            raise InvalidInput("a streamed completion has one row of messages")
        return UpstreamStream(self.upstream, self._body(inputs, 0, stream=True), deadline)

    def _body(self, inputs: Mapping[str, Array], row: int, *, stream: bool) -> dict[str, Any]:
        raw = inputs[MESSAGES][row]
        body: dict[str, Any] = {"model": self.spec.model, "messages": _messages(raw)}
        if "temperature" in inputs:
            body["temperature"] = float(inputs["temperature"][row])
        if "max_tokens" in inputs and int(inputs["max_tokens"][row]) > 0:
            body["max_tokens"] = int(inputs["max_tokens"][row])
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    async def _complete(
        self, body: dict[str, Any], deadline: Deadline | None
    ) -> tuple[str, str, int, int]:
        content = await self.upstream.post(COMPLETIONS, orjson.dumps(body), deadline)
        try:
            answer = orjson.loads(content)
            choice = answer["choices"][0]
            text = choice["message"]["content"] or ""
            finish = str(choice.get("finish_reason") or "stop")
        except (orjson.JSONDecodeError, LookupError, TypeError):
            raise self._malformed() from None
        prompt, completion = _usage(answer.get("usage"))
        return str(text), finish, prompt, completion

    def _malformed(self) -> ModelFailed:
        upstream = self.upstream
        return ModelFailed(
            f"{upstream.model}@{upstream.version}: its upstream answered no completion"
        )


class UpstreamStream:
    """An upstream's streamed completion (``serving.chat_stream.ChatStream``)."""

    def __init__(self, upstream: Upstream, body: dict[str, Any], deadline: Deadline | None) -> None:
        self.upstream = upstream
        self.body = body
        self.deadline = deadline
        self.end = StreamEnd()
        self._pieces: AsyncIterator[str] | None = None

    def __aiter__(self) -> AsyncIterator[str]:
        if self._pieces is None:
            self._pieces = self._read()
        return self._pieces

    async def aclose(self) -> None:
        pieces = self._pieces
        if pieces is not None and hasattr(pieces, "aclose"):
            await pieces.aclose()

    async def _read(self) -> AsyncIterator[str]:
        """The pieces; an answer with no event at all (an upstream that answered a
        whole completion, or not a stream) fails, rather than seeming an empty one."""
        body = orjson.dumps(self.body)
        events = 0
        async with self.upstream.stream(COMPLETIONS, body, self.deadline) as lines:
            async for line in lines:
                data = line.removeprefix(b"data:").strip() if line.startswith(b"data:") else None
                if not data:
                    continue
                events += 1
                if data == b"[DONE]":
                    return
                piece = self._take(data)
                if piece:
                    yield piece
        if not events:
            raise self._failed("no events")

    def _take(self, data: bytes) -> str:
        """One event's text; its finish reason and usage go to :attr:`end`."""
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise self._failed("a malformed event") from None
        if not isinstance(chunk, dict) or "error" in chunk:
            raise self._failed("an error event")
        if chunk.get("usage"):
            prompt, completion = _usage(chunk["usage"])
            self.end.prompt_tokens = None if prompt == UNKNOWN else prompt
            self.end.completion_tokens = None if completion == UNKNOWN else completion
        choices = chunk.get("choices") or []
        if not choices or not isinstance(choices[0], dict):
            return ""
        if choices[0].get("finish_reason"):
            self.end.finish_reason = str(choices[0]["finish_reason"])
        delta = choices[0].get("delta") or {}
        return str(delta.get("content") or "") if isinstance(delta, dict) else ""

    def _failed(self, what: str) -> ModelFailed:
        upstream = self.upstream
        return ModelFailed(f"{upstream.model}@{upstream.version}: its upstream streamed {what}")


def _messages(raw: Any) -> Any:
    try:
        messages = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidInput(
            "each row of 'messages' must be a JSON array of messages", input_name=MESSAGES
        ) from None
    if not isinstance(messages, list):
        raise InvalidInput(
            "each row of 'messages' must be a JSON array of messages", input_name=MESSAGES
        )
    return messages


def _usage(usage: Any) -> tuple[int, int]:
    """The upstream's prompt and completion tokens (-1 each it did not report)."""
    if not isinstance(usage, dict):
        return UNKNOWN, UNKNOWN
    counts = []
    for name in ("prompt_tokens", "completion_tokens"):
        value = usage.get(name)
        counts.append(value if isinstance(value, int) and value >= 0 else UNKNOWN)
    return counts[0], counts[1]
