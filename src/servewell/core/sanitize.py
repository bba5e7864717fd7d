"""Text normalization before a model sees it: Unicode NFC, control characters removed.

Tabs and newlines are kept (they carry meaning in text); every other control or
format character (C0/C1 controls, zero-width and bidirectional overrides) is dropped, so
look-alike inputs tokenize alike and invisible characters cannot smuggle instructions.
"""

from __future__ import annotations

import unicodedata

_KEEP = {"\t", "\n", "\r"}


def normalize_text(text: str) -> str:
    normalized = unicodedata.normalize("NFC", text)
    if normalized.isprintable():
        return normalized
    return "".join(
        char
        for char in normalized
        if char in _KEEP or unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Co", "Cn")
    )


def count_control_characters(text: str) -> int:
    """Control characters (C0 and C1, but tab, newline and carriage return) in ``text``:
    what a prompt may hold only so many of (``chat.max_control_characters``)."""
    if text.isprintable():
        return 0
    return sum(1 for char in text if char not in _KEEP and unicodedata.category(char) == "Cc")
