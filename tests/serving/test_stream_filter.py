"""The sliding window of a filtered stream: whatever the chunks, what is sent is what the
whole text's filter gives (every split point of a text with a card, an SSN, an e-mail
and a phone number; one character a chunk), and a long text without spaces is still
sent in bounded pieces."""

from __future__ import annotations

import pytest

from servewell.core.pii import apply_filter
from servewell.serving.stream_filter import SlidingFilter
from servewell.settings import OutputFilterSettings

TEXT = (
    "Thanks! Pay with 4111 1111 1111 1111 or mail ann.lee@example.com, "
    "SSN 123-45-6789, call (415) 555-2671 today."
)
REDACT = OutputFilterSettings(policy="redact")


def _sent(pieces: list[str], rule: OutputFilterSettings, holdback: int = 40) -> str:
    window = SlidingFilter(rule, holdback)
    return "".join(window.add(piece) for piece in pieces) + window.finish()


@pytest.mark.parametrize("split", range(1, len(TEXT)))
def test_two_chunks_split_anywhere_are_filtered_as_the_whole(split: int) -> None:
    assert _sent([TEXT[:split], TEXT[split:]], REDACT) == apply_filter(TEXT, "redact").text


def test_a_holdback_below_the_longest_finding_is_raised() -> None:
    assert SlidingFilter(REDACT, 16).holdback_chars == 40


def test_one_character_a_chunk_is_filtered_as_the_whole() -> None:
    sent = _sent(list(TEXT), REDACT)
    assert sent == apply_filter(TEXT, "redact").text
    assert "4111" not in sent
    assert "6789" not in sent
    assert "example.com" not in sent


def test_block_sends_nothing_from_the_first_finding_on() -> None:
    window = SlidingFilter(OutputFilterSettings(policy="block"), 40)
    sent = "".join(window.add(piece) for piece in TEXT.split(" "))  # no spaces: one word
    sent += window.finish()
    assert window.blocked
    assert "4111" not in sent


def test_text_without_spaces_is_released_in_bounded_pieces() -> None:
    window = SlidingFilter(REDACT, 40)
    released = [window.add("x" * 10) for _ in range(20)]
    assert any(released)
    assert len(window.window) <= 4 * 40 + 10


@pytest.mark.parametrize("before", range(150, 420, 7))
def test_a_card_inside_one_endless_word_is_never_cut(before: int) -> None:
    text = "x" * before + "4111111111111111" + "y" * 300
    pieces = [text[i : i + 5] for i in range(0, len(text), 5)]
    assert _sent(pieces, REDACT, holdback=64) == apply_filter(text, "redact").text
