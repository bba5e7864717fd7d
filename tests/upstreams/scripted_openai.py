"""An OpenAI-compatible (and minimal V2) upstream that answers as a script says: the one
upstream the tests cannot run for real (latencies, 429s with ``Retry-After``, 5xx,
dropped connections on demand). For the tests and for bench/.

Run::

    python tests/upstreams/scripted_openai.py --port 0 [--script script.json]
        [--latency-ms 50] [--text "echo: {last}"]

It prints ``listening on http://127.0.0.1:PORT`` (one line, flushed) once it accepts.

A plain asyncio HTTP/1.1 server (keep-alive, chunked streaming), not an ASGI app, so
that it can drop a connection before or in the middle of a response.

Endpoints:

- ``POST /v1/chat/completions``: non-streaming, or ``"stream": true`` server-sent events
  (``data: {chunk}\\n\\n`` ..., a last chunk with ``usage`` and empty ``choices``, then
  ``data: [DONE]\\n\\n``).
- ``GET /v1/models``: the model names the requests used so far, plus ``--model``.
- ``GET /v2/models/{m}``: V2 metadata (``--v2-metadata FILE`` or an echo model: input
  ``x`` FP32 [-1, -1], output ``y`` FP32 [-1, -1]); ``POST /v2/models/{m}/infer``
  answers the inputs back, renamed to the metadata's outputs, in order.
- ``GET /_received``: ``{"requests": [{n, method, path, headers, body, t}]}`` (``t``:
  this process's monotonic clock, seconds; headers lower-cased; a stream's also
  ``stream_end``: ``sent``, ``dropped`` as scripted, or ``client_gone`` when the caller
  closed the connection midway); ``DELETE /_received`` forgets them.
- ``PUT /_script``: a new script (the body, as below); the step cursor restarts.

A script is ``{"default": STEP, "steps": [STEP, ...]}`` (or just the list of steps): the
n-th scripted request (chat or infer, metadata included) follows ``steps[n]``, later ones
``default``. A STEP's fields, all optional:

- ``latency_ms``: wait before answering.
- ``status``: answer this status with an OpenAI-style error body (429, 500, 503, ...).
- ``retry_after``: the ``Retry-After`` header's value (with a non-200 status).
- ``drop``: ``"before"`` closes the connection without a byte; ``"mid"`` sends the
  headers and part of the body (a stream: the first chunk), then aborts; ``"eof"`` (a
  stream) closes the connection cleanly after the first chunk, no end of the body sent.
- ``text``: the completion; ``{last}`` is the last message's content, ``{model}`` the
  requested model, ``{n}`` the request number. Default ``"echo: {last}"``.
- ``chunks``: the stream's pieces (else the text split at spaces, spaces kept).
- ``chunk_delay_ms``: wait between stream chunks.
- ``whole``: answer a ``"stream": true`` request with a whole completion, as an upstream
  that does not stream does.
- ``usage``: false leaves ``usage`` out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONTROL_PATHS = ("/_received", "/_script")
ECHO_METADATA: dict[str, Any] = {
    "platform": "scripted",
    "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, -1]}],
    "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, -1]}],
}
REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass
class Script:
    default: dict[str, Any]
    steps: list[dict[str, Any]]
    cursor: int = 0

    @classmethod
    def from_json(cls, value: Any, default: dict[str, Any]) -> Script:
        if isinstance(value, list):
            return cls(dict(default), [dict(s) for s in value])
        if not isinstance(value, dict):
            raise ValueError("a script is an object or a list of steps")
        return cls({**default, **value.get("default", {})}, list(value.get("steps", [])))

    def next_step(self) -> dict[str, Any]:
        step = self.steps[self.cursor] if self.cursor < len(self.steps) else {}
        self.cursor += 1
        return {**self.default, **step}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Upstream:
    script: Script
    model: str
    v2_metadata: dict[str, Any]
    received: list[dict[str, Any]] = field(default_factory=list)
    models_seen: set[str] = field(default_factory=set)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (request := await read_request(reader)) is not None:
                keep = await self.answer(request, writer)
                if not keep or request.headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    async def answer(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must not be reused."""
        path = request.path.split("?", 1)[0]
        if path.startswith(CONTROL_PATHS):
            return await self.control(request, path, writer)
        body = parse_json(request.body)
        self.received.append(
            {
                "n": len(self.received),
                "method": request.method,
                "path": path,
                "headers": request.headers,
                "body": body,
                "t": time.monotonic(),
            }
        )
        if request.method == "GET" and path == "/v1/models":
            names = sorted(self.models_seen | {self.model})
            data = [{"id": n, "object": "model", "owned_by": "scripted"} for n in names]
            await send_json(writer, 200, {"object": "list", "data": data})
            return True
        return await self.scripted(request.method, path, body, writer)

    async def scripted(
        self, method: str, path: str, body: Any, writer: asyncio.StreamWriter
    ) -> bool:
        step = self.script.next_step()
        await asyncio.sleep(float(step.get("latency_ms", 0)) / 1000)
        if step.get("drop") == "before":
            writer.transport.abort()
            return False
        status = int(step.get("status", 200))
        if status != 200 and step.get("drop") != "mid":
            headers = {}
            if "retry_after" in step:
                headers["Retry-After"] = str(step["retry_after"])
            message = {"error": {"message": f"scripted {status}", "type": "scripted"}}
            await send_json(writer, status, message, headers)
            return True
        if method == "POST" and path == "/v1/chat/completions":
            return await self.chat(body, step, writer)
        if v2_path := re.fullmatch(r"/v2/models/([^/]+)(/versions/[^/]+)?(/infer)?", path):
            if v2_path.group(3) and method == "POST":
                return await self.infer(body, step, writer)
            if not v2_path.group(3) and method == "GET":
                answer = {"name": v2_path.group(1), **self.v2_metadata}
                await send_json(writer, 200, answer)
                return True
        await send_json(writer, 404, {"error": {"message": f"no route {method} {path}"}})
        return True

    async def chat(self, body: Any, step: dict[str, Any], writer: asyncio.StreamWriter) -> bool:
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            await send_json(writer, 400, {"error": {"message": "messages: a list is needed"}})
            return True
        model = str(body.get("model", self.model))
        self.models_seen.add(model)
        messages = body["messages"]
        last = messages[-1].get("content", "") if messages else ""
        n = len(self.received) - 1
        text = str(step.get("text", "echo: {last}")).format(last=last, model=model, n=n)
        if step.get("chunks"):
            text = "".join(step["chunks"])
        prompt_words = sum(len(str(m.get("content", "")).split()) for m in messages)
        usage = {
            "prompt_tokens": prompt_words,
            "completion_tokens": len(text.split()),
            "total_tokens": prompt_words + len(text.split()),
        }
        with_usage = step.get("usage", True) is not False
        ident = f"chatcmpl-scripted-{n}"
        if body.get("stream") and not step.get("whole"):
            chunks = step.get("chunks") or re.findall(r"\S+\s*|\s+", text) or [""]
            delay_s = float(step.get("chunk_delay_ms", 0)) / 1000
            record = self.received[-1]
            try:
                sent = await send_stream(
                    writer, ident, model, chunks, usage if with_usage else None, delay_s, step
                )
            except ConnectionError:
                record["stream_end"] = "client_gone"  # the caller stopped reading
                raise
            record["stream_end"] = "sent" if sent else "dropped"
            return sent
        answer: dict[str, Any] = {
            "id": ident,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
        }
        if with_usage:
            answer["usage"] = usage
        if step.get("drop") == "mid":
            await send_partial(writer, answer)
            return False
        await send_json(writer, 200, answer)
        return True

    async def infer(self, body: Any, step: dict[str, Any], writer: asyncio.StreamWriter) -> bool:
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list):
            await send_json(writer, 400, {"error": "inputs: a list is needed"})
            return True
        names = [o["name"] for o in self.v2_metadata["outputs"]]
        outputs = [{**tensor, "name": name} for name, tensor in zip(names, inputs, strict=False)]
        answer = {"model_name": "scripted", "outputs": outputs}
        if step.get("drop") == "mid":
            await send_partial(writer, answer)
            return False
        await send_json(writer, 200, answer)
        return True

    async def control(self, request: Request, path: str, writer: asyncio.StreamWriter) -> bool:
        if path == "/_received" and request.method == "GET":
            await send_json(writer, 200, {"requests": self.received})
        elif path == "/_received" and request.method == "DELETE":
            self.received.clear()
            await send_json(writer, 200, {"cleared": True})
        elif path == "/_script" and request.method == "PUT":
            self.script = Script.from_json(json.loads(request.body), {})
            await send_json(writer, 200, {"steps": len(self.script.steps)})
        else:
            await send_json(writer, 404, {"error": "no such control"})
        return True


def parse_json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return Request(method, target, headers, body)


def response_head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def send_json(
    writer: asyncio.StreamWriter, status: int, value: Any, extra: dict[str, str] | None = None
) -> None:
    body = json.dumps(value).encode()
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    writer.write(response_head(status, {**headers, **(extra or {})}) + body)
    await writer.drain()


async def send_partial(writer: asyncio.StreamWriter, value: Any) -> None:
    """Promise the whole body, send half of it, and abort the connection."""
    body = json.dumps(value).encode()
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    writer.write(response_head(200, headers) + body[: len(body) // 2])
    await writer.drain()
    writer.transport.abort()


async def send_stream(
    writer: asyncio.StreamWriter,
    ident: str,
    model: str,
    pieces: list[str],
    usage: dict[str, int] | None,
    delay_s: float,
    step: dict[str, Any],
) -> bool:
    headers = {
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache",
        "Transfer-Encoding": "chunked",
    }
    writer.write(response_head(200, headers))
    created = int(time.time())

    def chunk(choices: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
        base = {"id": ident, "object": "chat.completion.chunk", "created": created}
        return {**base, "model": model, "choices": choices, **more}

    events = [
        chunk([{"index": 0, "delta": {"role": "assistant", "content": piece}}]) for piece in pieces
    ]
    events.append(chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    if usage is not None:
        events.append(chunk([], usage=usage))
    for number, event in enumerate(events):
        if number and delay_s:
            await asyncio.sleep(delay_s)
        write_chunk(writer, f"data: {json.dumps(event)}\n\n".encode())
        await writer.drain()
        if step.get("drop") == "mid":
            writer.transport.abort()
            return False
        if step.get("drop") == "eof":  # a clean close midway, as a killed process's
            writer.close()
            return False
    write_chunk(writer, b"data: [DONE]\n\n")
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    return True


def write_chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(b"%x\r\n%s\r\n" % (len(data), data))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--script", type=Path, help="a script file (JSON)")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--text", default="echo: {last}")
    parser.add_argument("--model", default="scripted")
    parser.add_argument("--v2-metadata", type=Path, help="V2 model metadata (JSON)")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    default = {"latency_ms": args.latency_ms, "text": args.text}
    raw = json.loads(args.script.read_text()) if args.script else []
    metadata = json.loads(args.v2_metadata.read_text()) if args.v2_metadata else ECHO_METADATA
    upstream = Upstream(Script.from_json(raw, default), args.model, metadata)
    server = await asyncio.start_server(upstream.serve, args.host, args.port, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(f"listening on http://{args.host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    try:
        import uvloop  # servewell's own dependency: the faster loop, as the server's

        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(run(parse_args(argv)))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
