"""``servewell models``: list models, their versions, or one version in full."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from servewell.cli.output import console, open_services, print_json
from servewell.cli.versions import (
    models_table,
    summary_to_dict,
    version_details,
    version_to_dict,
    versions_table,
)
from servewell.core.ref import ModelRef

if TYPE_CHECKING:
    from servewell.registry import ModelVersion, SqlRegistry

app = typer.Typer(help="List registered models and show their versions.", no_args_is_help=False)


@app.callback(invoke_without_command=True)
def models(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List registered models (same as `servewell models list`)."""
    if ctx.invoked_subcommand is None:
        list_models(name=None, as_json=as_json)


@app.command("list")
def list_models(
    name: str | None = typer.Argument(None, help="A model: list its versions."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List models, or the versions of one model."""
    with open_services() as services:
        if name is not None:
            versions = services.registry.list_versions(ModelRef.parse(name).name)
            if as_json:
                print_json([version_to_dict(v) for v in versions])
            else:
                console.print(versions_table(versions))
            return
        summaries = services.registry.list_models()
    if as_json:
        print_json([summary_to_dict(s) for s in summaries])
    elif not summaries:
        console.print("no models registered yet; try [bold]servewell demo[/]")
    else:
        console.print(models_table(summaries))


@app.command("show")
def show(
    reference: str = typer.Argument(..., help="name, name@3 or name@alias."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show one version: signature, metrics, artifacts and lineage."""
    with open_services() as services:
        version = services.registry.resolve(ModelRef.parse(reference))
        lineage = _lineage(services.registry, version)
    if as_json:
        data = version_to_dict(version)
        data["lineage"] = [f"{v.name}@{v.version}" for v in lineage]
        print_json(data)
    else:
        console.print(version_details(version, lineage))


def _lineage(registry: SqlRegistry, version: ModelVersion) -> list[ModelVersion]:
    """The version and its ancestors, newest first."""
    chain = [version]
    while chain[-1].parent is not None and len(chain) < 100:
        chain.append(registry.resolve(chain[-1].parent))
    return chain
