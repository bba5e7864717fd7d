"""API key material: generation, parsing and constant-time checking. No storage here.

A key reads ``sw_<id>_<secret>``: the 12-character id is visible (it names the key in
listings and logs, and finds its row), the secret carries 256 bits of randomness and is
stored only as its SHA-256. A fast hash is right for a random 256-bit secret: there is
no dictionary to guess from, so slow password hashes would buy nothing but latency.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "sw"
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_KEY = re.compile(r"^sw_([a-z2-7]{12})_([A-Za-z0-9_-]{43})$")

#: What a key may be allowed to do: ``predict``, ``feedback`` (send ground-truth labels
#: for logged predictions), ``viewer`` (read the dashboard at ``/ui``); ``admin``
#: (changing state, acting in the dashboard) includes them all.
SCOPES = ("predict", "feedback", "viewer", "admin")


@dataclass(frozen=True, slots=True)
class NewKey:
    key_id: str
    secret_hash: str
    token: str
    """The whole key: shown once, never stored."""


def generate_key() -> NewKey:
    key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))
    secret = secrets.token_urlsafe(32)  # 32 bytes = 256 bits -> 43 characters
    return NewKey(key_id, hash_secret(secret), f"{PREFIX}_{key_id}_{secret}")


def parse_key(token: str) -> tuple[str, str] | None:
    """(id, secret), or None for text that is not shaped like a servewell key."""
    match = _KEY.match(token.strip())
    return (match[1], match[2]) if match else None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, secret_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), secret_hash)


def grants(scopes: tuple[str, ...], needed: str) -> bool:
    return needed in scopes or "admin" in scopes
