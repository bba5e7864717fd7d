"""``servewell batch``: score a CSV, JSON Lines or Parquet file with a registered version,
in this process, chunk by chunk (never the whole file in memory), through the server's
validation and model steps; a bad row gets its message in the ``error`` column."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from servewell.cli.output import console, open_services
from servewell.cli.progress import rows_progress
from servewell.core.ref import ModelRef
from servewell.errors import InvalidInput

if TYPE_CHECKING:
    from servewell.jobs.results import Row


def batch(
    reference: str = typer.Argument(..., help="name, name@3 or name@alias."),
    data: Path = typer.Argument(..., help="The rows: .csv, .jsonl or .parquet."),
    output: Path = typer.Option(..., "--output", "-o", help="Where the scored rows go."),
    table_format: str | None = typer.Option(
        None,
        "--format",
        help="The input's format when its suffix does not say: csv, jsonl, parquet.",
    ),
    output_format: str | None = typer.Option(
        None, "--output-format", help="The output's format (default: from -o's suffix)."
    ),
    id_column: str | None = typer.Option(
        None, "--id-column", help="The input column that identifies a row (default: its number)."
    ),
    version: int | None = typer.Option(None, "--version", help="Score with this version."),
    alias: str | None = typer.Option(None, "--alias", help="Score with the version of this alias."),
    chunk_rows: int | None = typer.Option(None, "--chunk-rows", min=1, help="Rows per chunk."),
) -> None:
    """Score a file of rows locally, in this process, with a registered version."""
    from servewell.jobs.results import write_table
    from servewell.jobs.scoring import score_chunk, standalone_scorer
    from servewell.jobs.tables import count_rows, format_of, pyarrow_modules, read_chunks

    with open_services() as services:
        version_ = services.registry.resolve(_reference(reference, version, alias))
        in_format = format_of(data, table_format)
        out_format = _output_format(output, output_format, in_format)
        if "parquet" in (in_format, out_format):
            pyarrow_modules()  # refused before any row is scored, not at the first write
        total = count_rows(data, in_format)
        rows_per_chunk = chunk_rows or services.settings.jobs.chunk_rows
        failed = 0
        with standalone_scorer(services, version_) as scorer, rows_progress() as progress:
            started = time.perf_counter()  # the model is loaded: scoring from here
            task = progress.add_task(f"{version_.name}@{version_.version}", total=total)

            def scored() -> Iterator[list[Row]]:
                nonlocal failed
                chunks = read_chunks(data, in_format, scorer.signature, rows_per_chunk, id_column)
                with closing(chunks):
                    for chunk in chunks:
                        rows = score_chunk(scorer, chunk, id_column)
                        failed += sum(row["error"] is not None for row in rows)
                        progress.advance(task, len(rows))
                        yield rows

            written = write_table(output, out_format, scored(), scorer.signature)
    seconds = time.perf_counter() - started
    console.print(_summary(f"{version_.name}@{version_.version}", written, failed, seconds, output))


def _reference(reference: str, version: int | None, alias: str | None) -> ModelRef:
    ref = ModelRef.parse(reference)
    if version is not None and alias is not None:
        raise InvalidInput("give --version or --alias, not both")
    if version is not None:
        return ModelRef(ref.name, version=version)
    if alias is not None:
        return ModelRef(ref.name, alias=alias)
    return ref


def _output_format(output: Path, given: str | None, input_format: str) -> str:
    from servewell.cli.jobs import format_for

    return format_for(output, given) or input_format


def _summary(title: str, rows: int, failed: int, seconds: float, output: Path) -> Table:
    table = Table(title=f"Scored with {title}", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("rows", f"{rows:,}")
    table.add_row("scored", f"{rows - failed:,}")
    table.add_row("rows with an error", f"{failed:,}")
    table.add_row("seconds", f"{seconds:.1f}")
    table.add_row("rows/s", f"{rows / seconds:,.0f}" if seconds > 0 else "-")
    table.add_row("written to", str(output))
    return table
