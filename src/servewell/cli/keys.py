"""``servewell keys``: create, list and revoke API keys. Secrets are shown once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.table import Table

from servewell.cli.output import console, open_services, print_json

if TYPE_CHECKING:
    from servewell.registry.keys import ApiKey

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


@app.command("create")
def create(
    name: str = typer.Option(..., "--name", "-n", help="Who or what uses the key."),
    scopes: str = typer.Option(
        "predict", "--scopes", "--scope", help="predict,feedback,viewer,admin"
    ),
    models: str | None = typer.Option(None, "--models", help="Comma-separated; default all."),
    rate: str | None = typer.Option(None, "--rate", help="e.g. 100/minute; default: configured."),
    allow_unknown_models: bool = typer.Option(
        False, "--allow-unknown-models", help="Accept --models not registered (yet)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (includes the key)."),
) -> None:
    """Create a key and print it once: only its hash is stored."""
    from servewell.registry.keys import ApiKeyStore, check_models_exist

    with open_services() as services:
        model_names = _split(models)
        if model_names and not allow_unknown_models:
            check_models_exist(services.registry, model_names)
        key, token = ApiKeyStore(services.registry).create(
            name, scopes=_split(scopes) or (), models=model_names, rate=rate
        )
    if as_json:
        print_json({**_to_dict(key), "key": token})
        return
    console.print(f"created API key [bold]{key.name}[/] ({', '.join(key.scopes)})")
    console.print("store it now; it cannot be shown again:")
    console.print(token, style="bold green", highlight=False, soft_wrap=True)


@app.command("list")
def list_keys(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List keys (never their secrets)."""
    from servewell.registry.keys import ApiKeyStore

    with open_services() as services:
        keys = ApiKeyStore(services.registry).list()
    if as_json:
        print_json([_to_dict(key) for key in keys])
        return
    if not keys:
        console.print("no API keys yet; create one with [bold]servewell keys create --name …[/]")
        return
    table = Table(title="API keys", title_justify="left")
    for column in ("name", "key", "scopes", "models", "rate", "created (UTC)", "status"):
        table.add_column(column)
    for key in keys:
        table.add_row(
            key.name,
            key.display,
            ",".join(key.scopes),
            ",".join(key.models) if key.models else "all",
            key.rate or "default",
            key.created_at.strftime("%Y-%m-%d %H:%M"),
            "[red]revoked[/]" if key.is_revoked else "[green]active[/]",
        )
    console.print(table)


@app.command("revoke")
def revoke(name: str = typer.Argument(..., help="Name of the key to revoke.")) -> None:
    """Revoke a key: every server refuses it within a second."""
    from servewell.registry.keys import ApiKeyStore

    with open_services() as services:
        ApiKeyStore(services.registry).revoke(name)
    console.print(f"revoked API key [bold]{name}[/]")


def _split(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _to_dict(key: ApiKey) -> dict[str, object]:
    return {
        "name": key.name,
        "key_id": key.key_id,
        "scopes": list(key.scopes),
        "models": list(key.models) if key.models else None,
        "rate": key.rate,
        "created_at": key.created_at.isoformat(),
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }
