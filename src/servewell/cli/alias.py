"""``servewell alias``: move or remove the names that point at versions."""

from __future__ import annotations

import typer

from servewell.cli.output import console, open_services
from servewell.core.ref import check_name

app = typer.Typer(help="Point aliases (production, staging, …) at versions.", no_args_is_help=True)


@app.command("set")
def set_alias(
    name: str = typer.Argument(..., help="Model name."),
    alias: str = typer.Argument(..., help="Alias, e.g. production."),
    version: int = typer.Argument(..., help="Version number it should point at.", min=1),
) -> None:
    """Point ALIAS of model NAME at VERSION."""
    with open_services() as services:
        services.registry.set_alias(check_name(name), alias, version)
    console.print(f"{name}@{alias} → version {version}")


@app.command("remove")
def remove_alias(
    name: str = typer.Argument(..., help="Model name."),
    alias: str = typer.Argument(..., help="Alias to remove."),
) -> None:
    """Remove ALIAS from model NAME."""
    with open_services() as services:
        services.registry.remove_alias(check_name(name), alias)
    console.print(f"removed alias {alias} of {name}")
