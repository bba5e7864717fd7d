"""``servewell monitor``: a model's quality, drift and latency over a window of its
prediction log, as a Rich table, JSON (every figure, each drift test's bins) or a
self-contained HTML page with plots."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from servewell.cli.output import console, errors, open_services, print_json, reporting_errors

if TYPE_CHECKING:
    from servewell.monitoring.backfill import Backfilled
    from servewell.monitoring.run import MonitorReport


def monitor(
    name: str = typer.Argument(..., help="Model name."),
    window: str = typer.Option("1d", "--window", help="A duration (1h, 1d) or a row count (1000)."),
    version: int | None = typer.Option(None, "--version", help="This version only."),
    as_json: bool = typer.Option(False, "--json", help="Print every figure as JSON."),
    html: Path | None = typer.Option(None, "--html", help="Also write an HTML page with plots."),
    rescan: bool = typer.Option(
        False, "--rescan", help="Read every logged row of a time window, not its sketches."
    ),
    backfill: bool = typer.Option(
        False,
        "--backfill",
        help="Rebuild the window sketches from the logged rows where they differ, and exit.",
    ),
) -> None:
    """NAME's quality on labelled rows, drift against its training reference and
    latency, over a window of its logged predictions."""
    from servewell.core.ref import check_name
    from servewell.monitoring.window import Span

    with reporting_errors():
        check_name(name)
        span = Span.parse(window)
    if backfill:
        _backfill(name, version, as_json)
        return
    with open_services() as services:
        report = _run(services, name, span, version, rescan, quiet=as_json)
    data = report.to_dict()
    if html is not None:
        _write_html(html, data)
    if as_json:
        print_json(data)
        return
    _print(data)
    if html is not None:
        console.print(f"wrote {html}")


def _run(
    services: Any, name: str, span: Any, version: int | None, rescan: bool, quiet: bool
) -> MonitorReport:
    from servewell.monitoring.run import check_model
    from servewell.monitoring.run import monitor as run_monitor

    with reporting_errors():
        check_model(services, name, version)  # before the progress display starts
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(
        *columns, console=errors, transient=True, disable=quiet or not errors.is_terminal
    ) as display:
        task = display.add_task(f"reading {name}'s log: 0 rows", total=None)
        read = 0

        def advance(rows: int) -> None:
            nonlocal read
            read += rows
            display.update(task, description=f"reading {name}'s log: {read:,} rows")

        return run_monitor(services, name, span, version=version, progress=advance, rescan=rescan)


def _backfill(name: str, version: int | None, as_json: bool) -> None:
    from servewell.monitoring.run import check_model

    with open_services() as services:
        with reporting_errors():
            check_model(services, name, version)
        done = backfill_with_progress(services, name, version, quiet=as_json)
    if as_json:
        print_json(done.to_dict())
        return
    console.print(
        f"{name}: {done.rows:,} logged rows read over {done.spans:,} spans; "
        f"sketches rebuilt in {done.rebuilt:,}"
    )


def backfill_with_progress(
    services: Any, name: str, version: int | None, *, quiet: bool
) -> Backfilled:
    """``monitoring/backfill.backfill_sketches`` with a progress bar on a terminal."""
    from servewell.monitoring.backfill import backfill_sketches

    label = name if version is None else f"{name}@{version}"
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("spans"),
        TimeRemainingColumn(),
    )
    with Progress(
        *columns, console=errors, transient=True, disable=quiet or not errors.is_terminal
    ) as display:
        task = display.add_task(f"sketching {label}'s log", total=None)

        def advance(done: int, total: int, rows: int) -> None:
            description = f"sketching {label}'s log: {rows:,} rows"
            display.update(task, completed=done, total=total, description=description)

        with reporting_errors():
            return backfill_sketches(services, name, version=version, progress=advance)


def _write_html(path: Path, data: dict[str, Any]) -> None:
    from servewell.errors import InvalidInput
    from servewell.reports.monitor_page import monitor_html

    with reporting_errors():
        try:
            path.write_text(monitor_html(data), encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot write {path}: {exc.strerror}") from None


def _print(data: dict[str, Any]) -> None:
    window = data["window"]
    if not data["groups"]:
        console.print(f"no predictions of {data['model']} logged in the window ({window})")
        return
    for group in data["groups"]:
        arm = f" arm {group['arm']}" if group["arm"] else ""
        title = (
            f"{data['model']}@{group['version']}{arm}: {group['logged']:,} logged, window {window}"
        )
        console.print(_overview(title, group))
        console.print(_drift_table(group))
        for line in _notes(group):
            console.print(line)


def _overview(title: str, group: dict[str, Any]) -> Table:
    table = Table(title=title, show_header=True)
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row(
        "label coverage",
        f"{group['labelled']:,} / {group['logged']:,} ({group['label_coverage']:.1%})",
    )
    for key, value in _quality_rows(group["quality"]):
        table.add_row(key, value)
    latency = group["latency_ms"] or {}
    for key in ("p50", "p95", "p99"):
        if key in latency:
            table.add_row(f"latency {key} (ms)", f"{latency[key]:.2f}")
    table.add_row("errors", "not logged")
    return table


def _quality_rows(figures: dict[str, Any] | None) -> list[tuple[str, str]]:
    if figures is None:
        return []
    if figures["task"] == "regression":
        return [(k, f"{figures[k]:.4f}") for k in ("mae", "rmse", "r2")]
    rows = [(k, f"{figures[k]:.4f}") for k in ("accuracy", "macro_f1")]
    if figures["roc_auc"] is not None:
        rows.append(("roc_auc", f"{figures['roc_auc']:.4f}"))
    for label, m in figures["per_class"].items():
        rows.append(
            (
                f"class {label}",
                f"P {m['precision']:.3f}  R {m['recall']:.3f}  F1 {m['f1']:.3f}  n {m['support']}",
            )
        )
    return rows


def _drift_table(group: dict[str, Any]) -> Table:
    drift = group["drift"]
    table = Table(title="drift against the training reference")
    for column in ("feature", "test", "statistic", "p-value", "threshold", "verdict"):
        table.add_column(
            column, justify="right" if column in ("statistic", "p-value", "threshold") else "left"
        )
    judged = [*drift["features"], *([drift["prediction"]] if drift["prediction"] else [])]
    for feature in judged:
        for test in feature["tests"]:
            statistic = "inf" if test["statistic"] is None else f"{test['statistic']:.4f}"
            p_value = "" if test["p_value"] is None else f"{test['p_value']:.4g}"
            verdict = "[red]drift[/]" if test["drift"] else "[green]ok[/]"
            table.add_row(
                feature["name"], test["test"], statistic, p_value, f"{test['threshold']}", verdict
            )
        if not feature["tests"]:
            table.add_row(feature["name"], "-", "", "", "", "no values")
    return table


def _notes(group: dict[str, Any]) -> list[str]:
    notes = [f"errors: {group['errors']}"]
    if group["quality_note"]:
        notes.append(f"quality: {group['quality_note']}")
    if group["drift"]["note"]:
        notes.append(f"drift: {group['drift']['note']}")
    notes += [f"not judged: {name}: {why}" for name, why in group["drift"]["not_judged"].items()]
    if group["unscored"]:
        notes.append(f"{group['unscored']} labelled row(s) not scored (cached or many-row answers)")
    return notes
