"""The progress bar of row-by-row work (``batch``, ``jobs submit --wait``): rows done of
the total, rows a second, time left; on stderr, so stdout keeps the results."""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from servewell.cli.output import errors


class RowsPerSecond(ProgressColumn):
    """Rows a second, as Rich measures the task's speed."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("… rows/s" if speed is None else f"{speed:,.0f} rows/s")


def rows_progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        RowsPerSecond(),
        TimeRemainingColumn(),
        console=errors,
        transient=False,
    )
