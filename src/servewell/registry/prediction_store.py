"""Where the prediction log is kept: the role each store plays, and the one
``monitoring.store`` chooses — ``database`` (:class:`SqlPredictionStore`, the default)
or ``parquet`` (:class:`ParquetPredictionStore`, files in the artifact store, for
volume). The server's log writes through it; ``servewell predictions``, ``servewell
feedback``, the feedback route and ``servewell monitor`` read through it, so each
works on either store. Labels are in the registry database either way."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Protocol

from servewell.registry.access import RegistryAccess
from servewell.registry.feedback import FeedbackResult
from servewell.registry.prediction_files import PREDICTIONS_FOLDER, ParquetPredictionStore
from servewell.registry.predictions import (
    SCAN_ROWS,
    LoggedPrediction,
    PredictionRow,
    SqlPredictionStore,
)
from servewell.registry.sql import SqlRegistry
from servewell.settings.monitoring import MonitoringSettings


class PredictionStore(Protocol):
    """Write, read, label and prune the prediction log."""

    registry: SqlRegistry
    """Where the labels are (and, for the ``database`` store, the predictions)."""

    def write(self, rows: Sequence[PredictionRow]) -> None:
        """Store rows (or hold them for a later write or :meth:`close`); raises when
        rows are lost (:class:`~servewell.registry.prediction_files.RowsLost` says how
        many, when more than these)."""

    def close(self) -> None:
        """Store what is held back."""

    def prune(self, before: datetime) -> int:
        """Delete predictions logged, and labels received, before ``before``; how many
        predictions went."""

    def rows(
        self, model: str, since: datetime | None = None, limit: int | None = None
    ) -> list[LoggedPrediction]:
        """``model``'s predictions since ``since``, oldest first (the newest ``limit``
        when given), each with its label."""

    def scan(
        self,
        model: str,
        *,
        since: datetime | None = None,
        version: int | None = None,
        newest: int | None = None,
        page_rows: int = SCAN_ROWS,
    ) -> Iterator[list[LoggedPrediction]]:
        """``model``'s predictions (``version``'s alone when given) since ``since``, or
        its ``newest`` ones, oldest first with their labels, a page at a time."""

    def labelled(
        self, model: str, since: datetime, *, version: int | None = None
    ) -> Iterator[list[LoggedPrediction]]:
        """``model``'s predictions logged since ``since`` that have a label, a chunk at a
        time, in no order."""

    def label(self, model: str, labels: Sequence[tuple[str, Any]]) -> FeedbackResult:
        """Store each ``(request_id, label)`` whose id ``model`` logged; count the others."""


def open_prediction_store(
    access: RegistryAccess, monitoring: MonitoringSettings | None = None
) -> PredictionStore:
    """The store ``monitoring.store`` names (``monitoring``: a server's own settings,
    when ``access`` was opened with others)."""
    monitoring = monitoring or access.settings.monitoring
    if monitoring.store == "parquet":
        return ParquetPredictionStore(
            access.registry,
            access.artifacts.root / PREDICTIONS_FOLDER,
            file_rows=monitoring.parquet_file_rows,
            file_age_s=monitoring.parquet_file_age_s,
        )
    return SqlPredictionStore(access.registry)
