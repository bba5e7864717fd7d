"""What a streamed chat answer is: text pieces as they arrive and how the stream ended
(:class:`ChatStream`), a runtime that streams itself (:class:`StreamingRuntime`: a
remote ``openai`` model), and a whole answer handed out a word at a time
(:class:`AnswerStream`), and a stream read by a task of its own (:class:`PumpedStream`).
``serving.text_stream`` opens them; ``serving.stream_filter`` filters them."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from servewell.core.deadline import Deadline
from servewell.errors import DeadlineExceeded

_PIECE = re.compile(r"\s*\S+")


@dataclass(slots=True)
class StreamEnd:
    """How a stream ended, once it has: OpenAI's ``finish_reason`` and the ``usage``
    its model reported (None: the endpoint counts it)."""

    finish_reason: str = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class ChatStream(Protocol):
    """Text pieces as they arrive; :attr:`end` says how it ended once it has."""

    @property
    def end(self) -> StreamEnd: ...

    def __aiter__(self) -> AsyncIterator[str]: ...

    async def aclose(self) -> None:
        """Stop reading (the client went away): an upstream read stops there."""


@runtime_checkable
class StreamingRuntime(Protocol):
    """A runtime that streams a one-row chat answer itself."""

    async def stream(self, inputs: dict[str, Any], deadline: Deadline | None) -> ChatStream: ...


class AnswerStream:
    """A complete answer handed out a word (with its leading space) at a time."""

    def __init__(self, text: str, end: StreamEnd) -> None:
        self.pieces = _PIECE.findall(text) or [text]
        self.end = end

    async def __aiter__(self) -> AsyncIterator[str]:
        for piece in self.pieces:
            yield piece

    async def aclose(self) -> None:
        self.pieces = []


def end_of(outputs: dict[str, np.ndarray[Any, Any]]) -> StreamEnd:
    """The end a full answer states in its optional outputs (``finish_reason``,
    ``prompt_tokens``, ``completion_tokens``)."""
    end = StreamEnd()
    if "finish_reason" in outputs:
        end.finish_reason = text_of(outputs["finish_reason"])
    for name in ("prompt_tokens", "completion_tokens"):
        if name in outputs:
            count = int(outputs[name].reshape(-1)[0])
            setattr(end, name, count if count >= 0 else None)  # -1: not reported
    return end


def text_of(array: np.ndarray[Any, Any]) -> str:
    """The first item of a text (BYTES) output, as a string."""
    item = array.reshape(-1)[0]
    return item.decode("utf-8", errors="replace") if isinstance(item, bytes) else str(item)


#: Pieces a pumped stream reads ahead of the client.
READ_AHEAD = 64
_END = object()


class PumpedStream:
    """A stream read by a task of its own into a bounded queue: the upstream's response,
    its timeouts and its deadline live in that task whatever the task that sends the
    pieces awaits (a client slow to read, the socket), and :meth:`aclose` cancels it,
    which closes the upstream's response. The sender waits for each piece at most until
    ``deadline``: DeadlineExceeded then."""

    def __init__(self, inner: ChatStream, deadline: Deadline | None, model: str) -> None:
        self.inner = inner
        self.deadline = deadline
        self.model = model
        self._queue: asyncio.Queue[object] = asyncio.Queue(READ_AHEAD)
        self._task: asyncio.Task[None] | None = None

    @property
    def end(self) -> StreamEnd:
        return self.inner.end

    async def __aiter__(self) -> AsyncIterator[str]:
        if self._task is None:
            self._task = asyncio.create_task(self._pump(), name="servewell-chat-stream")
        while True:
            item = await self._next()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield str(item)

    async def aclose(self) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self.inner.aclose()

    async def _next(self) -> object:
        deadline = self.deadline
        if deadline is None:
            return await self._queue.get()
        try:
            async with asyncio.timeout_at(deadline.at):  # entered and left within one step
                return await self._queue.get()
        except TimeoutError:
            raise DeadlineExceeded(self.model, deadline.timeout_ms) from None

    async def _pump(self) -> None:
        try:
            async for piece in self.inner:
                await self._queue.put(piece)
        except Exception as exc:
            await self._queue.put(exc)
            return
        await self._queue.put(_END)
