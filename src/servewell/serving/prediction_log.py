"""The prediction log, off the request path: a bounded buffer and a flusher.

The gateway's record step calls :meth:`PredictionLog.add` for each served prediction:
one sample-rate check and one append of a :class:`~servewell.serving.prediction_rows.Logged`
of plain values (its outputs and inputs as JSON text). Past ``monitoring.buffer_size``
records waiting, new ones are dropped and counted
(``servewell_predlog_dropped_total{reason="full"}``): serving never waits. Past half of
it, records keep no arrays for the window sketches (their JSON is read back instead): a
buffer that fills, because writes stall, holds what it held before the records had them.

A background task takes the whole buffer every ``monitoring.flush_interval_s`` and hands
it to a thread, which builds the rows (hashes, text) and writes them to the store
``monitoring.store`` names (``registry/prediction_store.py``), then hands them to each
flush consumer (``consumers``: whatever else wants every logged row, once a flush: the
window sketches, ``serving/prediction_sketches.py``, which read the records' arrays); a
write that fails is logged and its records counted as dropped (``reason="write_failed"``,
as is a record that cannot be encoded or built). Once an hour (and at start) rows older
than ``monitoring.retention_days`` are pruned. :meth:`close` (the lifespan's shutdown,
after the models have answered what they hold) lets a write under way end and writes
what is left, and what the store holds back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from servewell.observability import RequestRecord, ServingMetrics
from servewell.registry.prediction_files import RowsLost
from servewell.registry.prediction_store import PredictionStore
from servewell.registry.predictions import PredictionRow
from servewell.serving.prediction_rows import Answer, Logged, RowBuilder
from servewell.settings.monitoring import MonitoringSettings

logger = logging.getLogger(__name__)

#: How often old rows are pruned.
PRUNE_INTERVAL_S = 3600.0

SampleRate = Callable[[str], float]
"""A model's ``monitoring.sample_rate``."""
FlushConsumer = Callable[[list[PredictionRow], list[Logged]], None]
"""Called in the flush thread with each batch's rows once the store has taken them, and
the records they were built from, in the same order (a consumer that raises is logged;
the others and the log go on)."""


class PredictionLog:
    def __init__(
        self,
        store: PredictionStore,
        settings: MonitoringSettings,
        sample_rate: SampleRate,
        rows: RowBuilder,
        metrics: ServingMetrics,
        consumers: Sequence[FlushConsumer] = (),
    ) -> None:
        self.store = store
        self.settings = settings
        self.sample_rate = sample_rate
        self.rows = rows
        self.consumers = list(consumers)
        """Called with every written batch's rows and records (see :data:`FlushConsumer`)."""
        self.buffer: deque[Logged] = deque()
        self.capacity = settings.buffer_size
        self._arrays_below = (settings.buffer_size + 1) // 2
        """Records keep their arrays while fewer than this wait (see the module's doc)."""
        self.dropped = 0
        """Records dropped because the buffer was full (published at each flush)."""
        self._published_dropped = 0
        self._dropped_full = metrics.predlog_dropped.labels("full")
        self._dropped_failed = metrics.predlog_dropped.labels("write_failed")
        self._written = metrics.predlog_written
        self._rates: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._writing: asyncio.Future[None] | None = None
        """The batch being written (one at a time: the row builder is not shared)."""
        self._next_prune = 0.0

    # --- the request path -------------------------------------------------------------------

    def add(
        self,
        record: RequestRecord,
        latency_s: float,
        answer: Answer | None,
        arm: str | None = None,
    ) -> None:
        """Log one served prediction (``answer`` None: a response-cache hit; ``arm``: the
        traffic arm that answered, if the request was routed), unless the model's sample
        rate leaves it out or the buffer is full."""
        model = record.model
        rate = self._rates.get(model)
        if rate is None:
            rate = self._rates[model] = self.sample_rate(model)
        if rate < 1.0 and (rate <= 0.0 or random.random() >= rate):
            return
        buffer = self.buffer
        waiting = len(buffer)
        if waiting >= self.capacity:
            self.dropped += 1
            return
        try:
            arrays = waiting < self._arrays_below
            logged = self.rows.logged(record, arm, latency_s, answer, arrays=arrays)
        except Exception:
            logger.warning("cannot log %s's prediction", model, exc_info=True)
            self._dropped_failed.inc()
            return
        buffer.append(logged)  # one thread appends, one takes: no lock

    # --- the flusher ------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="servewell-prediction-log")

    async def close(self) -> None:
        """Stop the flusher, let a write under way end, then write what is left."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._writing is not None:
            await self._writing  # _write never raises
        await self.flush()
        await asyncio.to_thread(self._close_store)

    async def flush(self) -> int:
        """Write what the buffer holds now, in a thread; how many records were taken."""
        self._publish_dropped()
        batch = self._take()
        taken = len(batch)  # the thread empties the batch
        if taken:
            self._writing = asyncio.ensure_future(asyncio.to_thread(self._write, batch))
            try:
                await asyncio.shield(self._writing)  # a cancelled flusher leaves it running
            finally:
                if self._writing.done():
                    self._writing = None
        return taken

    async def _run(self) -> None:
        interval_s = self.settings.flush_interval_s
        while True:
            await asyncio.sleep(interval_s)
            await self.flush()
            if time.monotonic() >= self._next_prune:
                self._next_prune = time.monotonic() + PRUNE_INTERVAL_S
                await asyncio.to_thread(self._prune)

    def _take(self) -> deque[Logged]:
        """Everything in the buffer, leaving a new one (on the event loop: no lock)."""
        batch, self.buffer = self.buffer, deque()
        return batch

    def _write(self, batch: deque[Logged]) -> None:
        """Write ``batch`` and hand it to the consumers; then empty it, so its records
        are freed here, in the flush thread (the event loop still holds the deque until
        its await ends: freeing a second of records and their arrays there cost it
        several µs a request, bench/README.md)."""
        try:
            self._write_rows(*self.rows.to_rows(batch, self._cannot_log))
        finally:
            batch.clear()

    def _write_rows(self, rows: list[PredictionRow], records: list[Logged]) -> None:
        try:
            self.store.write(rows)
        except Exception as exc:
            self._count_lost(exc, len(rows))
            return
        self._written.inc(len(rows))
        for consume in self.consumers:
            try:
                consume(rows, records)
            except Exception:
                logger.warning("a prediction log consumer failed on a batch", exc_info=True)

    def _close_store(self) -> None:
        try:
            self.store.close()
        except Exception as exc:
            self._count_lost(exc, 0)

    def _count_lost(self, exc: Exception, count: int) -> None:
        """A failed write: ``count`` rows lost, or the store's own count of them."""
        lost = exc.count if isinstance(exc, RowsLost) else count
        logger.warning("could not write %d logged predictions", lost, exc_info=True)
        self._dropped_failed.inc(lost)

    def _cannot_log(self, logged: Logged) -> None:
        """Called while handling the exception that building ``logged``'s row raised (the
        row is left out, counted and logged)."""
        logger.warning("cannot log %s's prediction", logged.model, exc_info=True)
        self._dropped_failed.inc()

    def _prune(self) -> None:
        before = datetime.now(UTC) - timedelta(days=self.settings.retention_days)
        try:
            gone = self.store.prune(before)
        except Exception:
            logger.warning("could not prune the prediction log", exc_info=True)
            return
        if gone:
            logger.info("pruned %d logged predictions older than %s", gone, before.isoformat())

    def _publish_dropped(self) -> None:
        new = self.dropped - self._published_dropped
        if new:
            self._published_dropped += new
            self._dropped_full.inc(new)
            logger.warning("the prediction log's buffer was full: dropped %d records", new)
