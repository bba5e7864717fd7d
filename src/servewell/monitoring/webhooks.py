"""Alert events POSTed as JSON to ``monitoring.webhooks``, from a thread of their own.

:meth:`WebhookSender.send` only puts the event on a bounded queue (full: dropped and
counted), so neither serving nor the evaluation ever waits for a receiver. The thread
delivers each event to each webhook once: an attempt that fails (an error, a timeout of
``timeout_s``, a status other than 2xx) is retried with exponential backoff (tenacity:
``backoff_s`` · 2ⁿ, at most 30 s) up to ``max_attempts``, then given up and counted.
Each payload carries an ``id`` (rule, kind and the episode's start), the same for
every attempt, so a receiver that answered too late to be seen can drop the repeat.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
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
    """Delivers events to every webhook from one daemon thread, between start and stop."""

    def __init__(
        self,
        webhooks: list[WebhookSettings],
        outcome: Outcome = lambda _: None,
        *,
        backoff_s: float = 0.5,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.webhooks = webhooks
        self.outcome = outcome
        self.backoff_s = backoff_s
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(queue_size)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.webhooks:
            self._thread = threading.Thread(
                target=self._run, name="servewell-webhooks", daemon=True
            )
            self._thread.start()

    def send(self, event: StoredEvent) -> None:
        """Queue ``event`` for every webhook; never waits."""
        if self._thread is None:
            return
        try:
            self._queue.put_nowait(payload(event))
        except queue.Full:
            logger.warning(
                "webhook queue full: alert %s %s dropped", event.event.rule, event.event.kind
            )
            for _ in self.webhooks:
                self.outcome("dropped")

    def stop(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued for at most ``timeout_s``, then stop (the thread is a
        daemon: a receiver still being retried does not hold the process)."""
        if self._thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout_s)
        self._thread.join(timeout_s)
        self._thread = None

    def _run(self) -> None:
        with httpx.Client() as client:
            while (body := self._queue.get()) is not None:
                for webhook in self.webhooks:
                    self._deliver(client, webhook, body)

    def _deliver(
        self, client: httpx.Client, webhook: WebhookSettings, body: dict[str, Any]
    ) -> None:
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
                _shown(webhook.url), body["id"], webhook.max_attempts, type(exc).__name__,
            )  # fmt: skip
            self.outcome("failed")
            return
        self.outcome("delivered")


def _shown(url: str) -> str:
    """Scheme and host of ``url``: its path or query may hold a token (chat webhooks)."""
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.host}"
