"""The OpenAI-compatible endpoint's limits (``POST /v1/chat/completions``)."""

from __future__ import annotations

from pydantic import Field

from servewell.settings.section import Section


class ChatSettings(Section):
    """What a chat completion request may ask for, whatever the model."""

    max_tokens: int = Field(default=4096, ge=1, le=1_000_000)
    """Largest ``max_tokens`` (or ``max_completion_tokens``) a request may ask for; more
    is refused with 400 naming the parameter."""
    max_messages: int = Field(default=256, ge=1)
    """Most messages in one request."""
    max_control_characters: int = Field(default=0, ge=0)
    """Control characters (other than tab, newline and carriage return) a prompt may
    hold before it is refused with 400; those allowed are removed before the model
    sees the prompt (``core.sanitize``)."""
    stream_holdback_chars: int = Field(default=64, ge=40, le=4096)
    """Characters a filtered stream holds back (``models.<name>.output_filters``), so a
    card number, SSN, e-mail or phone number split across chunks is still caught (at
    least 40: a card number spaced digit by digit); a word is never split."""
