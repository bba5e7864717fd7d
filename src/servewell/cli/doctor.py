"""``servewell doctor``: the production checklist against this configuration, the
registry and (with ``--url``) the running server; exit 7 when an item fails."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.table import Table
from rich.text import Text

from servewell.cli.output import console, open_services, print_json, reporting_errors

if TYPE_CHECKING:
    from servewell.doctor.finding import Finding

#: ``servewell doctor`` found at least one failing item.
FAILED_EXIT = 7
STYLES = {"pass": "green", "warn": "yellow", "fail": "bold red"}


def doctor(
    url: str | None = typer.Option(
        None, "--url", help="The running server, e.g. http://127.0.0.1:8000: also ask it."
    ),
    api_key: str | None = typer.Option(
        None, "--api-key", help="A key for the server's model listing (with --url)."
    ),
    model: str | None = typer.Option(None, "--model", help="Only this model's items."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Check the production checklist: each item pass, warn or fail, what was found and
    the command or setting that fixes it. Exit 7 when an item fails."""
    from servewell.core.ref import check_name
    from servewell.doctor.context import build_context
    from servewell.doctor.live import probe_server
    from servewell.doctor.runner import has_failures, run_checks
    from servewell.errors import InvalidInput

    with open_services() as services, reporting_errors():
        if api_key is not None and url is None:
            raise InvalidInput("--api-key is sent to the server --url names; give --url too")
        if url is not None and not url.startswith(("http://", "https://")):
            raise InvalidInput(f"--url {url!r} must start with http:// or https://")
        if model is not None:
            check_name(model)
            services.registry.list_versions(model)  # an unknown model: exit 4
        live = probe_server(url, api_key) if url is not None else None
        findings = run_checks(build_context(services, live, model))
    if as_json:
        print_json({"passed": not has_failures(findings), "items": [f.to_dict() for f in findings]})
    else:
        console.print(_table(findings))
    if has_failures(findings):
        raise typer.Exit(FAILED_EXIT)


def _table(findings: list[Finding]) -> Table:
    table = Table(title="servewell doctor", show_lines=True)
    table.add_column("item")
    table.add_column("status")
    table.add_column("found", overflow="fold")
    table.add_column("fix", overflow="fold")  # a command cut short cannot be pasted
    for finding in findings:
        item = f"{finding.item} ({finding.model})" if finding.model else finding.item
        status = str(finding.status)
        # Text, not markup: fixes hold YAML such as [cache] and {enabled: true}.
        table.add_row(
            Text(item), Text(status, STYLES[status]), Text(finding.found), Text(finding.fix)
        )
    return table
