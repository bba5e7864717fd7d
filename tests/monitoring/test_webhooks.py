"""Alert events delivered to a real local HTTP receiver: retried with backoff through
failures, each delivered exactly once; one never accepted is given up and counted."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from servewell.core.alerting import AlertEvent
from servewell.monitoring.webhooks import WebhookSender
from servewell.registry.alerts import StoredEvent
from servewell.settings.monitoring import WebhookSettings

WAIT_S = 60.0


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


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    server = Receiver(request.param)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def event(kind: str = "firing") -> StoredEvent:
    return StoredEvent(
        AlertEvent(
            "acc-drop", "clicks", "accuracy", kind, 1000.0, 990.0, 0.5, 0.9, "<", "page", "rollback"
        ),
        version=2,
        note="rolled production back from v2 to v1",
    )


def wait_for(check: Any) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check() and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.mark.parametrize("receiver", [2], indirect=True)
def test_a_receiver_that_fails_twice_gets_each_alert_exactly_once(receiver: Receiver) -> None:
    outcomes: list[str] = []
    sender = WebhookSender(
        [WebhookSettings(url=receiver.url, timeout_s=5, max_attempts=5)],
        outcomes.append,
        backoff_s=0.01,
    )
    sender.start()
    sender.send(event("pending"))
    sender.send(event("firing"))
    wait_for(lambda: len(outcomes) == 2)
    sender.stop()
    assert outcomes == ["delivered", "delivered"]
    assert receiver.attempts == 4  # the first event's two failures, then one each
    assert [body["kind"] for body in receiver.accepted] == ["pending", "firing"]
    body = receiver.accepted[1]
    assert body["id"] == "acc-drop:firing:990.000"
    assert body["rule"] == "acc-drop"
    assert body["version"] == 2
    assert body["value"] == 0.5
    assert body["note"] == "rolled production back from v2 to v1"


@pytest.mark.parametrize("receiver", [100], indirect=True)
def test_a_receiver_that_never_accepts_is_given_up_and_counted(receiver: Receiver) -> None:
    outcomes: list[str] = []
    sender = WebhookSender(
        [WebhookSettings(url=receiver.url, max_attempts=3)], outcomes.append, backoff_s=0.01
    )
    sender.start()
    sender.send(event())
    wait_for(lambda: outcomes)
    sender.stop()
    assert outcomes == ["failed"]
    assert receiver.attempts == 3
    assert not receiver.accepted


def test_a_full_queue_drops_and_counts_without_waiting() -> None:
    outcomes: list[str] = []
    # Nothing listens on port 9 (discard): every attempt fails; the thread holds the
    # first event while the second fills the queue of one.
    sender = WebhookSender(
        [WebhookSettings(url="http://127.0.0.1:9/hook", timeout_s=1, max_attempts=20)],
        outcomes.append,
        backoff_s=0.5,
        queue_size=1,
    )
    sender.start()
    for _ in range(5):
        sender.send(event())
    assert "dropped" in outcomes
    sender.stop(timeout_s=0.1)
