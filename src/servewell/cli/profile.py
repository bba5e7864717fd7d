"""``servewell profile``: a reference profile for a version registered without training,
from a table of its inputs, so ``servewell monitor`` judges its drift."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from servewell.cli.monitor import backfill_with_progress
from servewell.cli.output import console, errors, open_services, print_json, reporting_errors


def profile(
    name: str = typer.Argument(..., help="Model name."),
    data: Path = typer.Argument(..., help="Its inputs: a .csv or .parquet file, one column each."),
    version: int | None = typer.Option(
        None, "--version", help="This version (default: production's, else the latest)."
    ),
    replace: bool = typer.Option(
        False, "--replace", help="Replace the profile the version has (its training one too)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print what was stored as JSON."),
) -> None:
    """Profile NAME's inputs and its predictions on them, and keep the profile with the
    version: what drift is judged against."""
    from servewell.core.ref import check_name
    from servewell.monitoring.profiling import check_target, profile_version

    with reporting_errors():
        check_name(name)
    with open_services() as services:
        target = check_target(services, name, version, replace=replace)
        columns = (
            SpinnerColumn(),
            TextColumn(f"profiling {target.name}@{target.version}: predicting"),
            TextColumn("{task.completed:,.0f} rows"),
            TimeElapsedColumn(),
        )
        with Progress(
            *columns, console=errors, transient=True, disable=as_json or not errors.is_terminal
        ) as display:
            task = display.add_task("profile", total=None)
            profiled = profile_version(
                services, target, data, progress=lambda rows: display.advance(task, rows)
            )
        # the rows logged before it: judged from their window sketches from now on
        sketched = backfill_with_progress(services, target.name, target.version, quiet=as_json)
    if as_json:
        print_json({**profiled.to_dict(), "backfilled": sketched.to_dict()})
        return
    kinds = ", ".join(f"{name} ({kind})" for name, kind in profiled.kinds.items())
    predicted = f"; predictions: {profiled.prediction}" if profiled.prediction else ""
    console.print(
        f"{'replaced' if profiled.replaced else 'stored'} the reference profile of "
        f"[bold]{profiled.version.name}@{profiled.version.version}[/]: {profiled.rows:,} rows, "
        f"{kinds}{predicted}; {sketched.rows:,} logged rows sketched against it",
        soft_wrap=True,
    )
