"""``servewell predictions`` and ``servewell feedback``: the prediction log from the
command line: export what a model answered, send the ground truth that came later."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from servewell.cli.output import console, open_services, print_json, reporting_errors

if TYPE_CHECKING:
    from collections.abc import Iterator

    from servewell.registry.feedback import FeedbackResult
    from servewell.registry.predictions import LoggedPrediction

#: Rows the table shows (the newest); ``--json`` and ``--csv`` give every row.
TABLE_ROWS = 50
#: Labels sent to the store at a time, so memory stays bounded whatever the file's size.
LABEL_BATCH = 5_000
CSV_COLUMNS = (
    "logged_at",
    "request_id",
    "model",
    "version",
    "arm",
    "key_name",
    "latency_ms",
    "cached",
    "outputs",
    "inputs",
    "label",
    "labeled_at",
)


def predictions(
    name: str = typer.Argument(..., help="Model name."),
    since: str = typer.Option("1h", "--since", help="How far back: 30m, 1h, 7d."),
    as_json: bool = typer.Option(False, "--json", help="Print every row as JSON."),
    as_csv: bool = typer.Option(False, "--csv", help="Print every row as CSV."),
) -> None:
    """Export NAME's logged predictions (with their labels, when they came)."""
    from datetime import UTC, datetime, timedelta

    from servewell.core.ref import check_name
    from servewell.errors import InvalidInput
    from servewell.registry.prediction_store import open_prediction_store
    from servewell.settings.monitoring import parse_duration_s

    with reporting_errors():
        check_name(name)
        if as_json and as_csv:
            raise InvalidInput("give --json or --csv, not both")
        try:
            since_s = parse_duration_s(since)
        except ValueError as exc:
            raise InvalidInput(f"--since: {exc}") from None
    start = datetime.now(UTC) - timedelta(seconds=since_s)
    with open_services() as services:
        services.registry.list_versions(name)  # a misspelt name: exit 4, not an empty table
        rows = open_prediction_store(services).rows(name, start)
    if as_json:
        print_json([row.to_dict() for row in rows])
    elif as_csv:
        _write_csv(rows)
    else:
        _print_table(name, since, rows)


def feedback(
    name: str = typer.Argument(..., help="Model name."),
    labels: Path = typer.Argument(..., help="CSV file with a header row.", exists=True),
    id_column: str = typer.Option("request_id", "--id-column", help="Column of request ids."),
    label_column: str = typer.Option("label", "--label-column", help="Column of labels."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Send ground-truth labels for NAME's logged predictions, joined by request id.

    A second label for an id replaces the first; ids never logged are counted and
    reported. Numbers in the label column are stored as numbers, anything else as text.
    """
    from servewell.core.ref import check_name
    from servewell.registry.prediction_store import open_prediction_store

    with reporting_errors():
        check_name(name)
        for _ in _read_labels(labels, id_column, label_column):
            pass  # every line checked before any label is stored: a bad file changes nothing
    with open_services() as services:
        services.registry.list_versions(name)  # a misspelt name: exit 4, not "all unknown"
        store = open_prediction_store(services)
        pairs = _read_labels(labels, id_column, label_column)
        result = _merged(store.label(name, batch) for batch in _batches(pairs))
    if as_json:
        print_json(result.to_dict())
        return
    console.print(f"accepted {result.accepted} label(s) for [bold]{name}[/]")
    if result.unknown_count:
        shown = ", ".join(result.unknown[:10])
        more = "" if result.unknown_count <= 10 else f" (and {result.unknown_count - 10} more)"
        console.print(f"{result.unknown_count} unknown request id(s): {shown}{more}")


def _read_labels(path: Path, id_column: str, label_column: str) -> Iterator[tuple[str, Any]]:
    """The file's ``(request_id, label)`` pairs, read a line at a time (bounded memory
    whatever the file's size)."""
    from servewell.core.feedback import checked_label, label_from_text
    from servewell.errors import InvalidInput
    from servewell.training.textfile import bounded_lines, sniff_text_table

    sniff_text_table(path)  # a binary or one endless line: refused before it is read
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:  # a BOM, as Excel writes
            reader = csv.DictReader(bounded_lines(file, path))
            columns = reader.fieldnames or []
            for column in (id_column, label_column):
                if column not in columns:
                    raise InvalidInput(
                        f"{path} has no column '{column}'; its columns: {', '.join(columns)}"
                    )
            for line, row in enumerate(reader, start=2):
                label = label_from_text(_cell(row, label_column, line))
                yield checked_label(row[id_column], label, f"line {line}")
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from None


def _batches(pairs: Iterator[tuple[str, Any]]) -> Iterator[list[tuple[str, Any]]]:
    batch: list[tuple[str, Any]] = []
    for pair in pairs:
        batch.append(pair)
        if len(batch) == LABEL_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _merged(results: Iterator[FeedbackResult]) -> FeedbackResult:
    """One answer for the batches (an id repeated across batches is counted in each)."""
    from servewell.registry.feedback import UNKNOWN_SHOWN, FeedbackResult

    merged = FeedbackResult(0)
    for result in results:
        unknown = (merged.unknown + result.unknown)[:UNKNOWN_SHOWN]
        count = merged.unknown_count + result.unknown_count
        merged = FeedbackResult(merged.accepted + result.accepted, unknown, count)
    return merged


def _cell(row: dict[str, str | None], column: str, line: int) -> str:
    """A label cell; an empty or missing one is refused (it would store ``""`` as a class)."""
    from servewell.errors import InvalidInput

    value = row.get(column)
    if value is None or not value.strip():
        raise InvalidInput(f"line {line} has no value in '{column}'")
    return value


def _write_csv(rows: list[LoggedPrediction]) -> None:
    writer = csv.writer(sys.stdout)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        document = row.to_dict()
        writer.writerow(_csv_cell(document[column]) for column in CSV_COLUMNS)


def _csv_cell(value: Any) -> Any:
    """JSON for outputs, inputs and labels; plain values as they are; empty for none."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return value


def _print_table(name: str, since: str, rows: list[LoggedPrediction]) -> None:
    table = Table(title=f"{name}: {len(rows)} prediction(s) in the last {since}")
    for column in ("logged (UTC)", "request id", "version", "key", "ms", "outputs", "label"):
        table.add_column(column)
    for row in rows[-TABLE_ROWS:]:
        table.add_row(
            row.logged_at.strftime("%Y-%m-%d %H:%M:%S"),
            row.request_id,
            str(row.version),
            row.key_name or "",
            f"{row.latency_ms:.1f}",
            "(cached)" if row.cached else json.dumps(row.outputs)[:60],
            "" if row.label is None else json.dumps(row.label),
        )
    console.print(table)
    if len(rows) > TABLE_ROWS:
        console.print(f"the newest {TABLE_ROWS} shown; --json or --csv for all")
