"""``servewell alias`` and ``servewell rollback``: move the names that point at versions.

Every move is recorded (from, to, when, by whom), so a rollback knows where to go.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.table import Table

from servewell.cli.output import console, open_services, print_json, who_am_i
from servewell.core.ref import DEFAULT_ALIAS, check_name

if TYPE_CHECKING:
    from servewell.registry.records import AliasMove

app = typer.Typer(help="Point aliases (production, staging, …) at versions.", no_args_is_help=True)


@app.command("set")
def set_alias(
    name: str = typer.Argument(..., help="Model name."),
    alias: str = typer.Argument(..., help="Alias, e.g. production."),
    version: int = typer.Argument(..., help="Version number it should point at.", min=1),
) -> None:
    """Point ALIAS of model NAME at VERSION (exit 10, nothing moved, when the servers
    could not load it within their memory budget)."""
    from servewell.serving.headroom import Change, check_headroom

    with open_services() as services:
        check_headroom(services, Change(check_name(name), alias=(alias, version)))
        services.registry.set_alias(name, alias, version, by=who_am_i())
    console.print(f"{name}@{alias} → version {version}")


@app.command("remove")
def remove_alias(
    name: str = typer.Argument(..., help="Model name."),
    alias: str = typer.Argument(..., help="Alias to remove."),
) -> None:
    """Remove ALIAS from model NAME."""
    with open_services() as services:
        services.registry.remove_alias(check_name(name), alias, by=who_am_i())
    console.print(f"removed alias {alias} of {name}")


@app.command("history")
def history(
    name: str = typer.Argument(..., help="Model name."),
    alias: str | None = typer.Option(None, "--alias", help="One alias; default: all."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Every move of NAME's aliases, oldest first: from, to, when, by whom."""
    with open_services() as services:
        moves = services.registry.alias_history(check_name(name), alias)
    if as_json:
        print_json([_to_dict(move) for move in moves])
        return
    table = Table(title=f"alias history of {name}", title_justify="left")
    for column in ("alias", "from", "to", "when (UTC)", "by"):
        table.add_column(column)
    for move in moves:
        table.add_row(
            move.alias,
            _spell(move.from_version),
            _spell(move.to_version),
            f"{move.moved_at:%Y-%m-%d %H:%M:%S}",
            move.moved_by or "-",
        )
    console.print(table)


def rollback(
    name: str = typer.Argument(..., help="Model name."),
    alias: str = typer.Option(DEFAULT_ALIAS, "--alias", help="The alias to move back."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Move NAME's alias (production) back to the version it pointed at before its last
    move. Twice goes forward again, like `cd -`. Exit 10, nothing moved, when the servers
    could not load that version within their memory budget."""
    from servewell.serving.headroom import Change, check_headroom

    with open_services() as services:
        previous = services.registry.previous_version(check_name(name), alias)
        if previous is not None:
            check_headroom(services, Change(name, alias=(alias, previous)))
        move = services.registry.rollback(name, alias, by=who_am_i())
    if as_json:
        print_json(_to_dict(move))
        return
    console.print(f"{name}@{alias} → version {move.to_version} (was {move.from_version})")


def _spell(version: int | None) -> str:
    return "-" if version is None else str(version)


def _to_dict(move: AliasMove) -> dict[str, object]:
    return {
        "model": move.name,
        "alias": move.alias,
        "from_version": move.from_version,
        "to_version": move.to_version,
        "moved_at": move.moved_at.isoformat(),
        "moved_by": move.moved_by,
        "revision": move.revision,
    }
