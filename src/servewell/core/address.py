"""Whether a host name or address is this machine's own loopback: a server bound there
is reachable from this host only (what ``serve --no-auth`` and ``doctor`` judge by)."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
