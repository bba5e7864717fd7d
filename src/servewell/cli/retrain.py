"""``servewell retrain``: a model's recorded training configuration on new data, and the
challenger registered only if it holds its own against the champion."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from servewell.cli.output import console, open_services, reporting_errors, who_am_i
from servewell.cli.train import RichProgress, finish

if TYPE_CHECKING:
    from servewell.pipeline.retrain import Challenge


def retrain(
    name: str = typer.Argument(
        ..., help="The model to retrain (its production version, else its latest, is the champion)."
    ),
    data: Path = typer.Option(
        ..., "--data", "-d", help="New labelled data: a .csv or .parquet file."
    ),
    with_feedback: bool = typer.Option(
        False,
        "--with-feedback",
        help="Also learn from logged predictions that have feedback labels.",
    ),
    margin: float = typer.Option(
        0.0,
        "--margin",
        min=0.0,
        help="How much worse than the champion the challenger may be, per metric.",
    ),
    report: Path | None = typer.Option(
        None, "--report", help="Folder for the challenger's report.html and report.json."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print every figure as JSON."),
) -> None:
    """Retrain NAME on new data; register the challenger only if it is at least as good
    as the champion on the same validation rows (exit 5 when it is not)."""
    from servewell.core.ref import check_name
    from servewell.pipeline.retrain import (
        challenge_champion,
        register_challenger,
        retrain_columns,
    )
    from servewell.training.data import load_dataset

    display = console if not as_json else Console(stderr=True)
    with reporting_errors():
        check_name(name)
    with open_services() as services:
        dataset = load_dataset(data, retrain_columns(services, name))
        challenge = challenge_champion(
            services,
            name,
            dataset,
            with_feedback=with_feedback,
            margin=margin,
            progress=RichProgress(display),
        )
        try:
            register_challenger(services, challenge, RichProgress(display), by=who_am_i())
        finally:  # shown whether it won or not
            finish(challenge.result, report, as_json, side_by_side(challenge))


def side_by_side(challenge: Challenge) -> Table:
    """Champion and challenger on the same rows; the metrics compared marked."""
    data = challenge.to_dict()
    champion, challenger = data["metrics"]["champion"], data["metrics"]["challenger"]
    compared = {item.metric: item for item in challenge.compared}
    table = Table(
        title=f"{challenge.result.name}: champion {challenge.champion_label} against the "
        f"challenger on {data['rows']:,} validation rows"
    )
    for column in ("metric", f"champion {challenge.champion_label}", "challenger", "change"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    table.add_column("compared")
    for metric, mine in challenger.items():
        theirs = champion.get(metric, float("nan"))
        item = compared.get(metric)
        verdict = "" if item is None else "[green]holds[/]" if item.passed else "[red]loses[/]"
        table.add_row(metric, f"{theirs:.4f}", f"{mine:.4f}", f"{mine - theirs:+.4f}", verdict)
    for metric, item in compared.items():
        if metric not in challenger:  # a per-class threshold
            verdict = "[green]holds[/]" if item.passed else "[red]loses[/]"
            table.add_row(metric, _number(item.champion), _number(item.challenger), "", verdict)
    for gate in challenge.result.gate:
        colour, word = ("green", "pass") if gate.passed else ("red", "FAIL")
        table.add_row("gate", "", "", "", f"[{colour}]{word}[/] {escape(gate.message)}")
    if challenge.feedback is not None:
        table.caption = "; ".join(challenge.feedback.lines())
    return table


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"
