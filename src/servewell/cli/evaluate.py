"""``servewell evaluate``: score registered versions on new labelled data, side by side."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from servewell.cli.output import console, open_services, print_json
from servewell.core.ref import ModelRef

if TYPE_CHECKING:
    from servewell.training.evaluate import Evaluation


def evaluate(
    reference: str = typer.Argument(..., help="The version to score: name@version or name@alias."),
    data: Path = typer.Argument(..., help="Labelled data: a .csv or .parquet file."),
    target: str = typer.Option(..., "--target", "-t", help="Column holding the true values."),
    compare: str | None = typer.Option(
        None, "--compare", help="A second version to score on the same rows, side by side."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """Score a registered version with the training pipeline's metrics."""
    from servewell.serving.loading import open_runtime
    from servewell.training.data import load_dataset
    from servewell.training.evaluate import evaluate_runtime

    with open_services() as services:
        refs = [ModelRef.parse(reference)] + ([ModelRef.parse(compare)] if compare else [])
        dataset = load_dataset(data)
        results: dict[str, Evaluation] = {}
        for ref in refs:
            version = services.registry.resolve(ref)
            runtime = open_runtime(services, version)
            try:
                with console.status(f"scoring {version.name}@{version.version}…"):
                    results[f"{version.name}@{version.version}"] = evaluate_runtime(
                        runtime,
                        dataset.frame,
                        target,
                        positive_label=version.params.get("positive_label"),
                    )
            finally:
                runtime.close()
    if as_json:
        print_json({label: _to_dict(result) for label, result in results.items()})
        return
    console.print(comparison_table(results))
    for label, result in results.items():
        for reason, rows in result.dropped.items():
            console.print(f"[dim]{label}: left out {rows} rows with {reason}[/]")


def comparison_table(results: dict[str, Evaluation]) -> Table:
    """One column per version; a delta column when there are two."""
    labels = list(results)
    first = next(iter(results.values()))
    table = Table(title=f"evaluation on {first.rows:,} labelled rows")
    table.add_column("metric")
    for label in labels:
        table.add_column(label, justify="right")
    if len(labels) == 2:
        table.add_column("change", justify="right")
    figures = [result.metrics.headline() for result in results.values()]
    for metric in figures[0]:
        values = [f.get(metric, float("nan")) for f in figures]
        cells = [f"{v:.4f}" for v in values]
        if len(values) == 2:
            cells.append(f"{values[1] - values[0]:+.4f}")
        table.add_row(metric, *cells)
    return table


def _to_dict(result: Evaluation) -> dict[str, Any]:
    return {"rows": result.rows, "dropped": result.dropped, "metrics": result.metrics.to_dict()}
