"""Dashboard sessions as signed cookies: no server-side state, so every worker and
replica reads the same cookie.

A cookie reads ``<key id>.<expires at>.<nonce>.<signature>``: the API key the visitor
signed in with (by id, never its secret), when the session ends (Unix seconds), a random
nonce and an HMAC-SHA256 over the three. The HMAC's key is derived from the API key's
stored hash (and ``auth.session_secret`` when set), so revoking or deleting the key ends
its sessions, and a cookie cannot be moved to another key. The CSRF token of a session
is an HMAC of its nonce under the same key: bound to the session, checked on every POST.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

#: The session cookie's name.
COOKIE = "servewell_session"

_COOKIE = re.compile(r"^([a-z2-7]{12})\.(\d{1,12})\.([A-Za-z0-9_-]{16,64})\.([0-9a-f]{64})\Z")


@dataclass(frozen=True, slots=True)
class Session:
    key_id: str
    expires_at: int
    """Unix seconds."""
    nonce: str
    signature: str

    @property
    def payload(self) -> str:
        return f"{self.key_id}.{self.expires_at}.{self.nonce}"

    def to_cookie(self) -> str:
        return f"{self.payload}.{self.signature}"

    def is_expired(self, now_s: float | None = None) -> bool:
        return (time.time() if now_s is None else now_s) >= self.expires_at


def signing_key(secret_hash: str, session_secret: str | None) -> bytes:
    """The HMAC key of a key's sessions: its stored hash, and the configured secret."""
    salt = b"servewell-dashboard-session:" + (session_secret or "").encode()
    return hmac.new(salt, secret_hash.encode(), hashlib.sha256).digest()


def issue(key_id: str, key: bytes, ttl_s: float, now_s: float | None = None) -> Session:
    """A new session of ``key_id``, signed with ``key`` (:func:`signing_key`)."""
    expires_at = int((time.time() if now_s is None else now_s) + ttl_s)
    nonce = secrets.token_urlsafe(18)
    payload = f"{key_id}.{expires_at}.{nonce}"
    return Session(key_id, expires_at, nonce, _sign(key, payload))


def parse(cookie: str | None) -> Session | None:
    """The session a cookie names (its signature not checked yet), or None."""
    match = _COOKIE.match(cookie or "")
    if match is None:
        return None
    return Session(match[1], int(match[2]), match[3], match[4])


def is_authentic(session: Session, key: bytes) -> bool:
    return hmac.compare_digest(session.signature, _sign(key, session.payload))


def csrf_token(session: Session, key: bytes) -> str:
    """The token every form of this session carries."""
    return _sign(key, "csrf:" + session.nonce)[:40]


def csrf_matches(session: Session, key: bytes, token: str | None) -> bool:
    return token is not None and hmac.compare_digest(csrf_token(session, key), token)


def _sign(key: bytes, payload: str) -> str:
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()
