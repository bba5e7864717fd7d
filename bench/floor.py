"""The HTTP floor: a bare ASGI app that reads the body, parses it as JSON and answers a
constant. Nothing faster can be built on the same Python stack and uvicorn settings."""

from __future__ import annotations

from typing import Any

import orjson

ANSWER = orjson.dumps({"predictions": [1]})
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    orjson.loads(body)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})
