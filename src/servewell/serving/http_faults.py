"""What can go wrong in an exchange with an upstream (``serving/http_pool.py``): each an
:class:`HttpFault`, its message never quoting what the upstream sent. The upstream
client (``serving/upstream.py``) words them in servewell's errors."""

from __future__ import annotations


class HttpFault(Exception):
    """An exchange with the upstream failed (the message never quotes what it sent)."""


class Unreachable(HttpFault):
    """No connection: refused, unreachable, no such host, TLS refused."""


class ConnectTimeout(HttpFault):
    """No connection within the connect timeout (or no free one in time)."""


class ReadTimeout(HttpFault):
    """The upstream sent nothing for the read timeout."""


class DeadlinePassed(HttpFault):
    """The request's deadline came before the answer."""


class Dropped(HttpFault):
    """The connection closed, or the answer was not HTTP, before the answer ended (the
    message says which, as what the upstream did: "dropped the connection")."""


class TooLarge(HttpFault):
    """The answer's body went past ``max_body_bytes``."""
