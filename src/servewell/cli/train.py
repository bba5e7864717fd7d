"""``servewell train``: from a CSV/Parquet file to a gated, registered model with a report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from servewell.cli.output import console, open_services, print_json, reporting_errors, who_am_i
from servewell.errors import GateFailed

if TYPE_CHECKING:
    from servewell.training.fit import EpochRecord
    from servewell.training.progress import StageSummary
    from servewell.training.result import PipelineResult


class RichProgress:
    """Shows each stage as it runs, the training epochs live, and a summary line per stage."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._display: Progress | None = None
        self._task: TaskID | None = None

    def stage_started(self, stage: str) -> None:
        self._display = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self._display.start()
        self._task = self._display.add_task(stage, total=None, detail="")

    def epoch(self, record: EpochRecord, total: int) -> None:
        if self._display is None or self._task is None:
            return
        loss = f"loss {record.loss:.4f} · " if record.loss is not None else ""
        self._display.update(
            self._task,
            total=total,
            completed=record.epoch,
            description=f"train: epoch {record.epoch}/{total}",
            detail=f"{loss}train {record.train_score:.3f} · validation "
            f"{record.validation_score:.3f}",
        )

    def stage_finished(self, summary: StageSummary) -> None:
        if self._display is not None:
            self._display.stop()
            self._display = None
        flow = ""
        if summary.rows_in is not None and summary.rows_out is not None:
            flow = (
                f"{summary.rows_in:,} x {summary.columns_in} → "
                f"{summary.rows_out:,} x {summary.columns_out}"
            )
        mark = "[green]✓[/]" if summary.passed else "[bold red]✗[/]"
        self.console.print(
            f"{mark} [bold]{summary.stage:<9}[/] {flow:<30} [dim]{summary.seconds:.2f} s[/]"
        )
        for line in summary.lines:
            style = "red" if line.startswith("FAIL") else "yellow" if ": warn" in line else "dim"
            self.console.print(f"    [{style}]{escape(line)}[/]", highlight=False, soft_wrap=True)


def train(
    data: Path = typer.Argument(..., help="Training data: a .csv or .parquet file."),
    target: str | None = typer.Option(None, "--target", "-t", help="Column to predict."),
    name: str | None = typer.Option(None, "--name", "-n", help="Model name (default: target)."),
    estimator: str | None = typer.Option(
        None, "--estimator", "-e", help="gradient_boosting (default), random_forest, logistic, mlp."
    ),
    config_file: Path | None = typer.Option(
        None, "--config", "-c", help="Pipeline file (YAML): cleaning, features, checks, gate."
    ),
    report: Path | None = typer.Option(
        None, "--report", help="Folder for report.html and report.json."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print every figure as JSON."),
) -> None:
    """Train, validate, check and gate a model; register it only if it passes."""
    from servewell.training.config import PipelineConfig, load_config
    from servewell.training.data import load_dataset
    from servewell.training.register import register_result
    from servewell.training.run import train_pipeline

    with reporting_errors():
        written = load_config(config_file) if config_file else PipelineConfig()
        config = written.with_overrides(target=target, name=name, estimator=estimator)
        dataset = load_dataset(data)
        display = console if not as_json else Console(stderr=True)
        if written.estimator.params and not config.estimator.params:
            display.print(
                f"[dim]note: estimator.params of {escape(str(config_file))} are for "
                f"{written.estimator.kind}; {config.estimator.kind} uses its defaults[/]",
                soft_wrap=True,
            )
        result = train_pipeline(dataset, config, RichProgress(display))
        if not result.passed:
            finish(result, report, as_json)
            raise GateFailed(result.failures)
    with open_services() as services:
        register_result(services, result, RichProgress(display), by=who_am_i())
    finish(result, report, as_json)


def finish(
    result: PipelineResult, report: Path | None, as_json: bool, table: Table | None = None
) -> None:
    """The run's report files (``report``: a folder), then its JSON, or its ``table``
    (default: :func:`key_table`) and the version it was registered as."""
    from servewell.reports.report import report_data, write_report

    if report is not None:
        _, html = write_report(result.report(), report)
        (Console(stderr=True) if as_json else console).print(f"report: {html}")
    if as_json:
        print_json(report_data(result.report()))
        return
    console.print(table if table is not None else key_table(result))
    if result.version is not None:
        version = result.version
        console.print(
            f"registered [bold]{version.name}@{version.version}[/]"
            + (f" with alias [cyan]{', '.join(version.aliases)}[/]" if version.aliases else "")
        )


def key_table(result: PipelineResult) -> Table:
    """Validation metrics, checks and gate in one table."""
    table = Table(title=f"{result.name}: validation on {len(result.validation_truth):,} rows")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("status")
    train = result.train_metrics.headline()
    for metric, value in result.metrics.headline().items():
        on_train = train.get(metric, float("nan"))
        table.add_row(metric, f"{value:.4f}", f"[dim]training rows: {on_train:.4f}[/]")
    for check in result.checks:
        colour = "green" if check.status == "pass" else "yellow"
        table.add_row(
            f"check: {check.name}", "", f"[{colour}]{check.status}[/] {escape(check.message)}"
        )
    for gate in result.gate:
        colour, word = ("green", "pass") if gate.passed else ("red", "FAIL")
        table.add_row("gate", "", f"[{colour}]{word}[/] {escape(gate.message)}")
    return table
