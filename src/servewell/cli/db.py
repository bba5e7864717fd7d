"""``servewell db upgrade``: bring the registry database to the newest schema and exit.

Every server and command already migrates when it opens the registry; a deployment runs
this once before the new servers start (a Kubernetes Job, a compose one-off), so a
migration never runs inside a rolling restart's first pod and a failed one stops the
rollout before any server is replaced."""

from __future__ import annotations

import typer

from servewell.cli.output import console, reporting_errors

app = typer.Typer(help="The registry database's schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade() -> None:
    """Run the registry's pending migrations, then exit (safe from many processes at once:
    they queue on a lock)."""
    from servewell.registry.database import create_registry_engine, map_sql_errors
    from servewell.registry.migrate import upgrade_to_head
    from servewell.settings import load_settings

    with reporting_errors():
        url = load_settings().resolved_database_url
        with map_sql_errors(url):
            engine = create_registry_engine(url)
            try:
                upgrade_to_head(engine)
            finally:
                engine.dispose()
    console.print("the registry's schema is up to date")
