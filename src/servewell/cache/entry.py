"""Cache keys: the resolved model version plus a hash of every request byte that decides
the answer.

A key names the *resolved* version (``iris@3``), so version 3's answer can never be
served for version 4 and promoting an alias can never serve a stale answer; the rest is
a SHA-256 over the request's bytes as the adapter read them (protocol, content type,
the binary-extension header, body), all parts' lengths first, so parts cannot run into each
other.
"""

from __future__ import annotations

import hashlib
import struct


def cache_key(model: str, version: int, *parts: bytes) -> str:
    digest = hashlib.sha256(struct.pack(f"<{len(parts)}Q", *map(len, parts)))
    for part in parts:
        digest.update(part)
    return f"{model}@{version}:{digest.hexdigest()}"
