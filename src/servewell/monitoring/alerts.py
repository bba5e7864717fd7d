"""Alert rules in a running server: evaluated on one replica, shown by every one.

Every ``monitoring.evaluation_interval_s`` (and about a second after new labels arrive
through the feedback endpoint: :meth:`AlertService.nudge`), each server process tries
to take or renew the registry lease ``alerts`` (:class:`~servewell.registry.leases.Leases`,
held for :func:`lease_ttl_s`). The holder evaluates the rules
(:class:`~servewell.monitoring.evaluator.AlertEvaluator`, after taking the stored
states over each time it newly holds the lease) and hands each event to the sinks: a
log line, the webhooks (:class:`~servewell.monitoring.webhooks.WebhookSender`). The
others stand by. Every process then sets ``servewell_alert_firing`` and
``servewell_monitor_value`` from the stored states. The registry work runs in a thread:
the event loop never waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from servewell.core.alerting import AlertState
from servewell.errors import ServewellError
from servewell.monitoring.evaluator import AlertEvaluator
from servewell.monitoring.rule_value import EVALUATED
from servewell.monitoring.webhooks import WebhookSender
from servewell.observability.alert_metrics import AlertMetrics
from servewell.registry import RegistryAccess
from servewell.registry.alerts import StoredEvent
from servewell.registry.leases import Leases, holder_id
from servewell.settings.monitoring import MonitoringSettings

logger = logging.getLogger(__name__)

LEASE = "alerts"
#: Shortest time between two evaluations that labels (not the interval) asked for.
NUDGE_DELAY_S = 1.0
#: How often the evaluating process prunes events past ``monitoring.retention_days``.
PRUNE_EVERY_S = 3600.0


def lease_ttl_s(interval_s: float) -> float:
    """Three intervals, and at least 30 s: a holder that misses a renewal or two (a
    long evaluation, a busy database) keeps the lease; one that died hands it over
    within that."""
    return max(3 * interval_s, 30.0)


class AlertService:
    """Evaluates, sends and shows the alert rules, between :meth:`start` and :meth:`stop`."""

    def __init__(
        self, access: RegistryAccess, settings: MonitoringSettings, metrics: AlertMetrics
    ) -> None:
        self.access = access
        self.metrics = metrics
        self.interval_s = settings.evaluation_interval_s
        self.retention_days = settings.retention_days
        self._pruned_at = 0.0
        self.evaluator = AlertEvaluator(access, settings)
        self.webhooks = WebhookSender(settings.webhooks, metrics.count_delivery)
        self.leases = Leases(access.registry)
        self.holder = holder_id()
        self.holding = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        for tracker in self.evaluator.trackers.values():
            if tracker.rule.metric.name not in EVALUATED:
                logger.warning(
                    "alert rule %s watches %s, which the prediction log does not hold: "
                    "servewell never fires it; servewell alerts export-prometheus writes it "
                    "for Prometheus",
                    tracker.rule.name,
                    tracker.rule.metric,
                )
        self.webhooks.start()
        self._task = asyncio.create_task(self._forever(), name="servewell-alerts")

    def nudge(self) -> None:
        """New labels arrived: evaluate soon, not at the next interval."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop evaluating, give the lease up (another replica takes over at once) and
        deliver what the webhooks still have queued (2 s at most)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.to_thread(self._stop)

    async def _forever(self) -> None:
        """A round at once (the gauges show the stored states from the start), then one
        per interval or nudge."""
        while True:
            self._wake.clear()
            try:
                await asyncio.to_thread(self.tick)
            except Exception:  # the next interval tries again
                logger.exception("alert evaluation failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
                await asyncio.sleep(NUDGE_DELAY_S)  # labels come in batches: one pass

    def tick(self) -> list[StoredEvent]:
        """One round: evaluate if this process holds the lease, then show the states."""
        events: list[StoredEvent] = []
        try:
            held = self.leases.acquire(LEASE, self.holder, lease_ttl_s(self.interval_s))
            if held and not self.holding:
                self.evaluator.restore()
            self.holding = held
            if held:
                events = self.evaluator.evaluate()
                self._prune()
            self._show()
        except ServewellError as exc:
            logger.warning("alert rules not evaluated: %s", exc.message)
        for event in events:
            self._log(event)
            self.webhooks.send(event)
        return events

    def _prune(self) -> None:
        """Once an hour: events older than ``monitoring.retention_days`` go."""
        now = time.time()
        if now - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = now
        self.evaluator.store.prune(now - self.retention_days * 86400)

    def _show(self) -> None:
        stored = self.evaluator.store.states()
        for name, tracker in self.evaluator.trackers.items():
            rule, state = tracker.rule, stored.get(name)
            firing = state is not None and state.state is AlertState.FIRING
            value = None if state is None else state.value
            self.metrics.show(name, rule.model, str(rule.metric), firing, value)

    def _log(self, stored: StoredEvent) -> None:
        """One JSON line per event: its message, and every field as the webhooks get it."""
        event = stored.event
        message = (
            f"alert {event.rule} {event.kind}: {event.metric} {event.op} {event.threshold} "
            f"(value {event.value}, {event.model} v{stored.version})"
            + (f"; {stored.note}" if stored.note else "")
        )
        level = logging.WARNING if event.kind == "firing" else logging.INFO
        logger.log(level, message, extra={"fields": {"message": message, **stored.to_dict()}})

    def _stop(self) -> None:
        if self.holding:
            with contextlib.suppress(ServewellError):
                self.leases.release(LEASE, self.holder)
            self.holding = False
        self.webhooks.stop(timeout_s=2.0)
