"""Detectors for personal data in model *outputs*, and the redact/block policies.

Each detector is a regular expression, some with a check that cuts false positives:
payment cards must pass the Luhn checksum and start like a real card network's number,
so a random 16-digit number is almost never flagged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Kind = Literal["ssn", "card", "email", "phone"]
KINDS: tuple[Kind, ...] = ("ssn", "card", "email", "phone")
Policy = Literal["redact", "block"]

#: What may stand between a card's digits (one of them each time): a space of any kind,
#: a hyphen or dash of any kind, a dot, an invisible zero-width character.
_SEP = r"\s.\-\u2010-\u2015\u200b-\u200d\u2060\ufeff"

_PATTERNS: dict[Kind, re.Pattern[str]] = {
    # Area 000, 666 and 900-999, group 00 and serial 0000 are never issued.
    "ssn": re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\d-])"),
    "card": re.compile(rf"(?<![\d-])\d(?:[{_SEP}]?\d){{12,18}}(?![\d-])"),
    "email": re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
    "phone": re.compile(
        r"(?<![\w+])(?:\+?1[ .-]?)?(?:\(\d{3}\)\s?|\d{3}[ .-])\d{3}[ .-]\d{4}(?!\d)"
        r"|(?<![\w+])\+\d{1,3}(?:[ .-]?\d{2,4}){2,4}(?!\d)"
    ),
}

# Issuer prefixes (IIN ranges) of the major card networks.
_CARD_PREFIX = re.compile(
    r"^(?:4|5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720)|3[47]|3(?:0[0-5]|[68])|6(?:011|5))"
)


@dataclass(frozen=True, slots=True)
class Finding:
    kind: Kind
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Filtered:
    """A text after the filter: possibly redacted, or withheld entirely."""

    text: str
    findings: tuple[Finding, ...]
    blocked: bool


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def find_pii(text: str, kinds: Iterable[Kind] = KINDS) -> list[Finding]:
    """Non-overlapping findings, earlier kinds in KINDS winning overlaps."""
    wanted = set(kinds)
    findings: list[Finding] = []
    for kind in KINDS:
        if kind not in wanted:
            continue
        for match in _PATTERNS[kind].finditer(text):
            if kind == "card" and not _is_card(match.group()):
                continue
            candidate = Finding(kind, match.start(), match.end())
            if not any(_overlaps(candidate, seen) for seen in findings):
                findings.append(candidate)
    return sorted(findings, key=lambda finding: finding.start)


def apply_filter(text: str, policy: Policy, kinds: Iterable[Kind] = KINDS) -> Filtered:
    """Redact each finding (``[REDACTED:email]``), or withhold the whole text."""
    findings = tuple(find_pii(text, kinds))
    if not findings:
        return Filtered(text, findings, blocked=False)
    if policy == "block":
        return Filtered("", findings, blocked=True)
    parts, last = [], 0
    for finding in findings:
        parts.append(text[last : finding.start])
        parts.append(f"[REDACTED:{finding.kind}]")
        last = finding.end
    parts.append(text[last:])
    return Filtered("".join(parts), findings, blocked=False)


def _is_card(candidate: str) -> bool:
    # Any script's digits (fullwidth, Arabic-Indic, ...) read as the ASCII ones.
    digits = "".join(str(int(c)) for c in candidate if c.isdecimal())
    return 13 <= len(digits) <= 19 and bool(_CARD_PREFIX.match(digits)) and luhn_valid(digits)


def _overlaps(a: Finding, b: Finding) -> bool:
    return a.start < b.end and b.start < a.end
