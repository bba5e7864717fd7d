"""Alert events POSTed as JSON to ``monitoring.webhooks``, each webhook from a thread
of its own.

:meth:`WebhookSender.send` only puts the event on each webhook's bounded queue (full:
dropped and counted for that webhook), so neither serving nor the evaluation ever waits
for a receiver, and a receiver that hangs (accepts, never answers) holds back only its
own queue: the others get every event. Each webhook's thread delivers each event once:
an attempt that fails (an error, a timeout of ``timeout_s``, a status other than 2xx) is
retried with exponential backoff (tenacity: ``backoff_s`` · 2ⁿ, at most 30 s) up to
``max_attempts``, then given up, logged with the last status (or error) and counted.
Each payload carries an ``id`` (rule, kind and the episode's start), the same for
every attempt, so a receiver that answered too late to be seen can drop the repeat.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from tenacity import Retrying, stop_after_attempt, wait_exponential

from servewell.registry.alerts import StoredEvent
from servewell.settings.monitoring import WebhookSettings

logger = logging.getLogger(__name__)

#: Events waiting for delivery, at most.
QUEUE_SIZE = 1000
#: The longest wait between two attempts.
MAX_BACKOFF_S = 30.0

Outcome = Callable[[str], None]
"""Told ``delivered``, ``failed`` (every attempt failed) or ``dropped`` (queue full)."""


def payload(stored: StoredEvent) -> dict[str, Any]:
    """The JSON body of one event."""
    event = stored.event
    return {"id": f"{event.rule}:{event.kind}:{event.since:.3f}", **stored.to_dict()}


class WebhookSender:
    """Delivers events to every webhook, one daemon thread each, between start and stop."""

    def __init__(
        self,
        webhooks: list[WebhookSettings],
        outcome: Outcome = lambda _: None,
        *,
        backoff_s: float = 0.5,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.webhooks = webhooks
        self._lanes = [_Lane(webhook, outcome, backoff_s, queue_size) for webhook in webhooks]
        self._started = False

    def start(self) -> None:
        for lane in self._lanes:
            lane.start()
        self._started = bool(self._lanes)

    def send(self, event: StoredEvent) -> None:
        """Queue ``event`` for every webhook; never waits."""
        if not self._started:
            return
        body = payload(event)
        for lane in self._lanes:
            lane.put(body)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued for at most ``timeout_s`` in all, then stop (the threads
        are daemons: a receiver still being retried, or hanging, does not hold the process)."""
        if not self._started:
            return
        deadline = time.monotonic() + timeout_s
        for lane in self._lanes:
            lane.ask_to_stop()
        for lane in self._lanes:
            lane.join(max(0.0, deadline - time.monotonic()))
        self._started = False


class _Lane:
    """One webhook's queue and the thread that delivers from it."""

    def __init__(
        self, webhook: WebhookSettings, outcome: Outcome, backoff_s: float, queue_size: int
    ) -> None:
        self.webhook = webhook
        self.outcome = outcome
        self.backoff_s = backoff_s
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(queue_size)
        self._thread = threading.Thread(target=self._run, name="servewell-webhook", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, body: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(body)
        except queue.Full:
            logger.warning(
                "webhook %s queue full: alert %s dropped", _shown(self.webhook.url), body["id"]
            )
            self.outcome("dropped")

    def ask_to_stop(self) -> None:
        """Stop after what is queued; a full queue (a stuck receiver) is left to the join."""
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)

    def _run(self) -> None:
        with httpx.Client() as client:
            while (body := self._queue.get()) is not None:
                self._deliver(client, body)

    def _deliver(self, client: httpx.Client, body: dict[str, Any]) -> None:
        webhook = self.webhook
        retrying = Retrying(
            stop=stop_after_attempt(webhook.max_attempts),
            wait=wait_exponential(multiplier=self.backoff_s, max=MAX_BACKOFF_S),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    answer = client.post(webhook.url, json=body, timeout=webhook.timeout_s)
                    answer.raise_for_status()
        except httpx.HTTPError as exc:
            logger.warning(
                "webhook %s gave up on alert %s after %d attempts: %s",
                _shown(webhook.url), body["id"], webhook.max_attempts, _failure(exc),
            )  # fmt: skip
            self.outcome("failed")
            return
        self.outcome("delivered")


def _failure(exc: httpx.HTTPError) -> str:
    """What the last attempt got: the receiver's status, or the error's kind."""
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__


def _shown(url: str) -> str:
    """Scheme and host of ``url``: its path or query may hold a token (chat webhooks)."""
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.host}"
