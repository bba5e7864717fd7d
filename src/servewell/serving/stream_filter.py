"""Output filters on a stream of text, on a sliding window.

The same detectors and policies as a complete answer's (``core.pii``,
``serving.postprocess``), applied to what has arrived but not been sent: the window.
Each piece is added to it; what is sent is the window up to ``holdback_chars`` from its
end, moved back to the start of any finding it would cut and of the word it would cut
(so an e-mail is never split, and a card number, SSN or phone number still arriving
lies within the held-back tail). When the stream ends the rest is filtered and sent.
Under ``redact`` each finding becomes ``[REDACTED:card]``; under ``block`` the stream
stops at the first finding, with nothing of it sent (``finish_reason``
``content_filter``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from servewell.core.pii import apply_filter, find_pii
from servewell.serving.chat_stream import ChatStream, StreamEnd
from servewell.settings import OutputFilterSettings

CONTENT_FILTER = "content_filter"
#: The least a window holds back: the longest spaced finding still arriving (a 19-digit
#: card with a separator between each digit, 37 characters) must fit behind the cut.
MIN_HOLDBACK_CHARS = 40


class SlidingFilter:
    """The window itself: :meth:`add` a piece, get what may be sent now."""

    def __init__(self, rule: OutputFilterSettings, holdback_chars: int) -> None:
        self.rule = rule
        self.holdback_chars = max(holdback_chars, MIN_HOLDBACK_CHARS)
        self.window = ""
        self.kinds: list[str] = []
        """Each finding's kind, as found (for the metrics)."""
        self.blocked = False

    def add(self, piece: str) -> str:
        self.window += piece
        cut = self._cut()
        return self._release(cut) if cut > 0 else ""

    def finish(self) -> str:
        return self._release(len(self.window))

    def _cut(self) -> int:
        """Where the sent part ends: ``holdback_chars`` from the end, moved back out of
        any word and any finding it would cut."""
        window = self.window
        cut = len(window) - self.holdback_chars
        if cut <= 0:
            return 0
        findings = find_pii(window, self.rule.kinds)
        moved = True
        while moved and cut > 0:
            moved = False
            word_cut = cut
            while word_cut > 0 and not window[word_cut - 1].isspace():
                word_cut -= 1  # never inside a word
            if word_cut == 0 and len(window) > 4 * self.holdback_chars:
                word_cut = cut  # one endless word: cut inside it, never inside a finding
            cut, moved = word_cut, word_cut != cut
            for finding in findings:
                if finding.start < cut < finding.end:
                    cut, moved = finding.start, True
        return cut

    def _release(self, cut: int) -> str:
        if self.blocked:
            return ""
        sent, self.window = self.window[:cut], self.window[cut:]
        result = apply_filter(sent, self.rule.policy, self.rule.kinds)
        self.kinds.extend(finding.kind for finding in result.findings)
        if result.blocked:
            self.blocked = True
            self.window = ""
            return ""
        return result.text


class FilteredStream:
    """A chat stream passed through a :class:`SlidingFilter`; findings are counted in
    ``servewell_output_filter_findings_total`` (``counter``, when given)."""

    def __init__(
        self,
        inner: ChatStream,
        rule: OutputFilterSettings,
        holdback_chars: int,
        model: str,
        counter: Any = None,
    ) -> None:
        self.inner = inner
        self.window = SlidingFilter(rule, holdback_chars)
        self.model = model
        self.counter = counter

    @property
    def end(self) -> StreamEnd:
        end = self.inner.end
        if self.window.blocked:
            end.finish_reason = CONTENT_FILTER
        return end

    async def __aiter__(self) -> AsyncIterator[str]:
        window = self.window
        try:
            async for piece in self.inner:
                sent = window.add(piece)
                if window.blocked:
                    break
                if sent:
                    yield sent
            rest = window.finish()
            if rest:
                yield rest
        finally:
            self._count()
        if window.blocked:
            await self.inner.aclose()

    async def aclose(self) -> None:
        await self.inner.aclose()

    def _count(self) -> None:
        counter, kinds = self.counter, self.window.kinds
        if counter is None or not kinds:
            return
        for kind in set(kinds):
            counter.labels(self.model, kind, self.window.rule.policy).inc(kinds.count(kind))
        kinds.clear()
