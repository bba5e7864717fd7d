"""A real local HTTP server to receive alert webhooks: it fails the first POSTs on
purpose, then accepts, and keeps what it accepted."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver(ThreadingHTTPServer):
    """Answers 500 to the first ``failures`` POSTs, then 200; keeps what it accepted."""

    def __init__(self, failures: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.failures = failures
        self.attempts = 0
        self.accepted: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        with self.server.lock:
            self.server.attempts += 1
            failing = self.server.attempts <= self.server.failures
            if not failing:
                self.server.accepted.append(body)
        self.send_response(500 if failing else 200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def running_receiver(failures: int) -> Iterator[Receiver]:
    """A receiver failing its first ``failures`` POSTs, serving until the block ends."""
    server = Receiver(failures)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
