"""A chat model's answer as a stream of text pieces, for ``stream: true``.

:class:`TextStreams` opens one: a runtime that streams itself (it has an async
``stream(inputs, deadline)``, as a remote ``openai`` model does) is read as its pieces
arrive; any other chat model answers in full through the predictor (batched, filtered)
and its text is handed out a word at a time. :meth:`TextStreams.open` returns only once
the first piece is there, so a model that fails before its first byte still has its
fallback chain (``serving.fallback``), and the time to it is
``servewell_llm_first_token_seconds{model,version}``.

A streamed answer of a model with ``output_filters`` passes a sliding window
(``serving.stream_filter``): the last ``chat.stream_holdback_chars`` characters are held
back until more arrive, so personal data split across chunks is still redacted (or the
stream ends, ``finish_reason: content_filter``, under ``block``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from servewell.core.chat_signature import TEXT
from servewell.core.deadline import Deadline
from servewell.core.inference import InferRequest
from servewell.core.validation import validate_inputs
from servewell.observability.llm_metrics import LlmMetrics
from servewell.serving.chat_stream import (
    AnswerStream,
    ChatStream,
    PumpedStream,
    StreamEnd,
    StreamingRuntime,
    end_of,
    text_of,
)
from servewell.serving.deployment import Deployment
from servewell.serving.predictor import Predictor
from servewell.serving.stream_filter import FilteredStream


class OpenedStream:
    """A stream whose first piece has arrived (held until it is iterated)."""

    def __init__(self, inner: ChatStream, first: str | None, rest: AsyncIterator[str]) -> None:
        self.inner, self.first, self.rest = inner, first, rest

    @property
    def end(self) -> StreamEnd:
        return self.inner.end

    async def __aiter__(self) -> AsyncIterator[str]:
        if self.first is not None:
            yield self.first
        async for piece in self.rest:
            yield piece

    async def aclose(self) -> None:
        await self.inner.aclose()


class TextStreams:
    """Opens a chat model's answer as a stream (see the module docstring)."""

    def __init__(self, predictor: Predictor, metrics: LlmMetrics, holdback_chars: int) -> None:
        self.predictor = predictor
        self.metrics = metrics
        self.holdback_chars = holdback_chars

    async def open(
        self, request: InferRequest, deployment: Deployment, deadline: Deadline | None
    ) -> OpenedStream:
        """The stream, its first piece there (or the model's error, raised here)."""
        started = time.perf_counter()
        runtime = deployment.backend
        if isinstance(runtime, StreamingRuntime):
            predictor = self.predictor
            inputs = validate_inputs(
                deployment.signature, request.inputs, predictor.limits, request.datatypes
            )
            source = await runtime.stream(inputs, deadline)
            stream: ChatStream = PumpedStream(source, deadline, deployment.name)
            rule = predictor.filter_for(deployment.name)
            if rule is not None:
                counter = predictor.metrics.output_filter if predictor.metrics else None
                stream = FilteredStream(stream, rule, self.holdback_chars, deployment.name, counter)
        else:
            response = await self.predictor.infer(request, deployment, deadline=deadline)
            stream = AnswerStream(text_of(response.outputs[TEXT]), end_of(response.outputs))
        opened = await _first_piece(stream)
        self.metrics.first_token(deployment.name, deployment.number, time.perf_counter() - started)
        return opened


async def _first_piece(stream: ChatStream) -> OpenedStream:
    """The stream with its first piece read (a pumped stream's within its deadline; a
    whole answer's is at hand)."""
    rest = aiter(stream)
    try:
        first = await anext(rest, None)
    except BaseException:
        await stream.aclose()
        raise
    return OpenedStream(stream, first, rest)
