"""Which of a route group's models answers a prompt: the group's rules in order, the
first that holds picks, else the group's default. Pure: the prompt's tokens are
counted, and the classifier asked, by the caller (``serving/llm_routes.py``), which asks
the classifier only when :func:`classifier_needed` says the rules reach it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from servewell.settings.llm import RouteGroup, RouteRule

DEFAULT_RULE = "default"


@dataclass(frozen=True, slots=True)
class Choice:
    """The model picked and the rule that picked it (its name, or ``default``)."""

    model: str
    rule: str


def choose(
    group: RouteGroup, prompt_text: str, prompt_tokens: int, label: str | None = None
) -> Choice:
    """The model for a prompt of ``prompt_tokens`` tokens whose users' text is
    ``prompt_text``; ``label`` is what the group's classifier said of it (None: not
    asked, and a classifier rule then does not hold)."""
    for rule in group.rules:
        name = _holds(rule, prompt_text, prompt_tokens, label)
        if name is not None:
            return Choice(rule.model, name)
    return Choice(group.default, DEFAULT_RULE)


def classifier_needed(group: RouteGroup, prompt_text: str, prompt_tokens: int) -> str | None:
    """The classifier to ask before :func:`choose`: the group's, when no rule before its
    first classifier rule holds; else None."""
    for rule in group.rules:
        if rule.classifier is not None:
            return rule.classifier
        if _holds(rule, prompt_text, prompt_tokens, None) is not None:
            return None
    return None


def matched_keyword(keywords: tuple[str, ...], text: str) -> str | None:
    """The first of ``keywords`` found in ``text`` as whole words, ignoring case."""
    match = _pattern(keywords).search(text)
    if match is None:
        return None
    found = " ".join(match[0].lower().split())
    return next(word for word in keywords if " ".join(word.lower().split()) == found)


def _holds(rule: RouteRule, text: str, tokens: int, label: str | None) -> str | None:
    """The rule's name for the header when it holds, else None."""
    if rule.prompt_tokens_over is not None:
        return rule.name if tokens > rule.prompt_tokens_over else None
    if rule.keywords is not None:
        word = matched_keyword(tuple(rule.keywords), text)
        return f"keyword:{' '.join(word.lower().split())}" if word is not None else None
    return rule.name if label is not None and label == rule.label else None


@lru_cache(maxsize=256)  # keywords come from the settings: a few lists
def _pattern(keywords: tuple[str, ...]) -> re.Pattern[str]:
    """One regex for the list: each word or phrase between word boundaries, a phrase's
    words separated by any whitespace; longer phrases first."""
    phrases = sorted(
        (r"\s+".join(re.escape(part) for part in word.split()) for word in keywords),
        key=len,
        reverse=True,
    )
    return re.compile(r"(?<!\w)(?:" + "|".join(phrases) + r")(?!\w)", re.IGNORECASE)
