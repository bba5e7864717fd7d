"""Dashboard session cookies and their CSRF tokens: signed, bound to their key and
session, refused when altered or expired."""

from __future__ import annotations

from servewell.http.dashboard import session
from servewell.http.dashboard.signin import HOME, safe_next

KEY = session.signing_key("ab" * 32, None)


def test_a_cookie_reads_back_as_the_session_it_names() -> None:
    issued = session.issue("abcdefghijk2", KEY, ttl_s=60)
    found = session.parse(issued.to_cookie())
    assert found == issued
    assert session.is_authentic(found, KEY)
    assert not found.is_expired()


def test_an_altered_cookie_or_another_keys_signature_is_not_authentic() -> None:
    issued = session.issue("abcdefghijk2", KEY, ttl_s=60)
    longer = session.Session(
        issued.key_id, issued.expires_at + 3600, issued.nonce, issued.signature
    )
    assert not session.is_authentic(longer, KEY)
    other_key = session.signing_key("cd" * 32, None)
    assert not session.is_authentic(issued, other_key)
    with_secret = session.signing_key("ab" * 32, "configured")
    assert not session.is_authentic(issued, with_secret)


def test_an_expired_session_says_so() -> None:
    issued = session.issue("abcdefghijk2", KEY, ttl_s=60, now_s=1_000)
    assert issued.is_expired(now_s=1_060)
    assert not issued.is_expired(now_s=1_059)


def test_text_that_is_no_cookie_parses_to_none() -> None:
    for text in (None, "", "sw_x", "abcdefghijk2.1.short.00", "a.b.c.d", "x" * 5000):
        assert session.parse(text) is None


def test_a_csrf_token_belongs_to_one_session() -> None:
    first = session.issue("abcdefghijk2", KEY, ttl_s=60)
    second = session.issue("abcdefghijk2", KEY, ttl_s=60)
    token = session.csrf_token(first, KEY)
    assert session.csrf_matches(first, KEY, token)
    assert not session.csrf_matches(second, KEY, token)
    assert not session.csrf_matches(first, KEY, None)
    assert not session.csrf_matches(first, KEY, "")


def test_sign_in_goes_on_only_to_a_dashboard_page() -> None:
    assert safe_next("/ui/models/iris") == "/ui/models/iris"
    for target in ("https://evil.example/", "//evil.example", "/ui//evil", "/ui/\\evil", "/v2"):
        assert safe_next(target) == HOME
