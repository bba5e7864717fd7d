import pytest

from servewell.core.pii import apply_filter, find_pii, luhn_valid


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("my ssn is 123-45-6789.", "ssn"),
        ("ssn 123 45 6789", "ssn"),
        ("visa 4111 1111 1111 1111 thanks", "card"),
        ("mastercard 5555-5555-5555-4444", "card"),
        ("amex 378282246310005", "card"),
        ("write to jane.doe+news@example.co.uk today", "email"),
        ("call (555) 123-4567", "phone"),
        ("call 555.123.4567", "phone"),
        ("ring +44 20 7946 0958", "phone"),
    ],
)
def test_detects(text: str, kind: str) -> None:
    assert [finding.kind for finding in find_pii(text)] == [kind]


@pytest.mark.parametrize(
    "text",
    [
        "order 4111111111111112 shipped",  # Luhn-invalid
        "tracking 1234567812345670",  # Luhn-valid, but no card network starts with 1
        "invoice 2024-01-15, total 1234.56",
        "ssn-like 000-12-3456 and 666-12-3456 are never issued",
        "version 1.2.3 of the model",
        "no personal data here at all",
        "user@localhost is not an address",
    ],
)
def test_stays_quiet_on_lookalikes(text: str) -> None:
    assert find_pii(text) == []


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert luhn_valid("79927398713")
    assert not luhn_valid("4111111111111112")


def test_redact_and_block() -> None:
    text = "mail bob@example.com or call 555-123-4567"
    redacted = apply_filter(text, "redact")
    assert redacted.text == "mail [REDACTED:email] or call [REDACTED:phone]"
    assert not redacted.blocked
    blocked = apply_filter(text, "block")
    assert blocked.blocked
    assert blocked.text == ""
    assert len(blocked.findings) == 2
    only_email = apply_filter(text, "redact", kinds=["email"])
    assert only_email.text == "mail [REDACTED:email] or call 555-123-4567"


@pytest.mark.parametrize(
    "card",
    [
        "4111.1111.1111.1111",
        "4111\u00a01111\u00a01111\u00a01111",  # no-break spaces
        "4111\u20111111\u20111111\u20111111",  # non-breaking hyphens
        "4\u200b111111111111111",  # a zero-width space
        "\uff14" + "\uff11" * 15,  # fullwidth digits
        "\u0664" + "\u0661" * 15,  # Arabic-Indic digits
    ],
)
def test_a_card_spelt_with_other_separators_or_digits_is_found(card: str) -> None:
    assert apply_filter(f"pay with {card} now", "redact").text == "pay with [REDACTED:card] now"
