"""How deeply a request body's JSON nests, checked without recursion.

A protocol adapter first asks :func:`may_exceed_depth` of the raw bytes (a count, no
parsing); only when that says maybe does it walk the parsed document with
:func:`check_json_depth`. A scalar at the top is depth 0, ``[]`` is 1, ``[[1]]`` is 2.
"""

from __future__ import annotations

from typing import NoReturn

from servewell.errors import InvalidInput


def may_exceed_depth(body: bytes, limit: int) -> bool:
    """False when ``body`` cannot nest deeper than ``limit``: it opens no more than
    ``limit`` arrays and objects in all (brackets inside strings count too)."""
    return body.count(b"[") + body.count(b"{") > limit


def check_json_depth(document: object, limit: int) -> None:
    """Raise InvalidInput when the parsed JSON ``document`` nests deeper than ``limit``.

    Walks arrays and objects only, with a stack instead of recursion, and stops at the
    first container past the limit."""
    if not isinstance(document, dict | list):
        return
    if limit < 1:
        _raise_too_deep(limit)
    pending: list[tuple[dict[object, object] | list[object], int]] = [(document, 1)]
    while pending:
        container, depth = pending.pop()
        children = container.values() if isinstance(container, dict) else container
        for child in children:
            if isinstance(child, dict | list):
                if depth == limit:
                    _raise_too_deep(limit)
                pending.append((child, depth + 1))


def _raise_too_deep(limit: int) -> NoReturn:
    raise InvalidInput(
        f"the request body nests deeper than {limit} levels (validation.max_json_depth)",
        max_json_depth=limit,
    )
