"""Alert events delivered to a real local HTTP receiver: retried with backoff through
failures, each delivered exactly once; one never accepted is given up and counted; one
that hangs delays no other; a server's log never shows a webhook URL's credentials."""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from servewell.core.alerting import AlertEvent
from servewell.monitoring.webhooks import WebhookSender
from servewell.registry.alerts import StoredEvent
from servewell.settings.monitoring import WebhookSettings
from webhook_receiver import Receiver, running_receiver

WAIT_S = 60.0


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    """A webhook receiver failing ``request.param`` POSTs (parametrized), else 2."""
    with running_receiver(getattr(request, "param", 2)) as server:
        yield server


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
def test_a_receiver_that_never_accepts_is_given_up_and_counted(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "servewell.monitoring.webhooks")
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
    [line] = [r.getMessage() for r in caplog.records if "gave up" in r.getMessage()]
    assert line.endswith("after 3 attempts: HTTP 500")


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


@contextmanager
def hanging_sink() -> Iterator[str]:
    """A local socket that accepts connections and never answers them."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    lock = threading.Lock()
    closed = False

    def accept() -> None:
        with contextlib.suppress(OSError):  # the listener closed at the end
            while True:
                connection = listener.accept()[0]
                with lock:
                    if closed:
                        connection.close()
                        return
                    held.append(connection)

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    finally:
        with lock:
            closed = True
            listener.close()
            for connection in held:
                connection.close()


@pytest.mark.parametrize("receiver", [0], indirect=True)
def test_a_hanging_receiver_holds_back_no_other(receiver: Receiver) -> None:
    """Each webhook has its own queue and thread: one that accepts and never answers (for
    as long as ``timeout_s`` allows) delays none of the events the others get."""
    outcomes: list[str] = []
    with hanging_sink() as hanging:
        sender = WebhookSender(
            [
                WebhookSettings(url=hanging, timeout_s=60, max_attempts=1),
                WebhookSettings(url=receiver.url, timeout_s=5, max_attempts=1),
            ],
            outcomes.append,
            backoff_s=0.01,
        )
        sender.start()
        for kind in ("pending", "firing", "resolved"):
            sender.send(event(kind))
        wait_for(lambda: len(receiver.accepted) == 3)
        sender.stop(timeout_s=0.1)
    assert [body["kind"] for body in receiver.accepted] == ["pending", "firing", "resolved"]
    assert outcomes.count("delivered") == 3


DELIVER_WITH_SERVER_LOGGING = """
import sys, time
from servewell.observability.logs import configure_logging
from servewell.monitoring.webhooks import WebhookSender
from servewell.registry.alerts import StoredEvent
from servewell.core.alerting import AlertEvent
from servewell.settings.monitoring import WebhookSettings

configure_logging("INFO")
outcomes = []
sender = WebhookSender([WebhookSettings(url=sys.argv[1], max_attempts=2)], outcomes.append,
                       backoff_s=0.01)
sender.start()
alert = AlertEvent("r", "m", "accuracy", "firing", 1000.0, 990.0, 0.5, 0.9, "<", "p", "none")
sender.send(StoredEvent(alert))
deadline = time.monotonic() + 60
while not outcomes and time.monotonic() < deadline:
    time.sleep(0.02)
sender.stop()
print("outcomes", outcomes, flush=True)
"""


@pytest.mark.parametrize("receiver", [1], indirect=True)
def test_a_server_never_logs_a_webhooks_credentials(receiver: Receiver) -> None:
    """httpx logs every request's full URL at INFO (user:password@, ?token=): with the
    server's logging, only servewell's own line, naming the host, is written."""
    url = receiver.url.replace("http://", "http://user:s3cret@") + "?token=t0ken"
    done = subprocess.run(
        [sys.executable, "-c", DELIVER_WITH_SERVER_LOGGING, url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "outcomes ['delivered']" in done.stdout
    assert len(receiver.accepted) == 1  # after one 500: every attempt's URL logged
    for secret in ("s3cret", "t0ken"):
        assert secret not in done.stdout + done.stderr
