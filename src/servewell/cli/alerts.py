"""``servewell alerts``: the alert rules with their stored state and recent events, and
``servewell alerts export-prometheus``: the same rules for Prometheus."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from servewell.cli.output import console, open_services, print_json, reporting_errors

app = typer.Typer(
    help="Alert rules: with no command, each rule's state and recent events; "
    "export-prometheus writes them as Prometheus alerting rules.",
    invoke_without_command=True,
)


@app.callback()
def alerts(
    ctx: typer.Context,
    model: str | None = typer.Option(None, "--model", help="This model's rules and events."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The rules of monitoring.alerts with their state (as the evaluating server stored
    it) and their recent events."""
    if ctx.invoked_subcommand is not None:
        return
    from servewell.core.ref import check_name
    from servewell.monitoring.alert_status import alert_status

    with open_services() as services, reporting_errors():
        if model is not None:
            check_name(model)
            services.registry.list_versions(model)  # an unknown model: exit 4
        data = alert_status(services, model).to_dict()
    if as_json:
        print_json(data)
        return
    _print(data)


def _print(data: dict[str, Any]) -> None:
    rules = Table(title="alert rules")
    for column in ("rule", "model", "condition", "window", "for", "state", "value", "action"):
        rules.add_column(column)
    for rule in data["rules"]:
        value = "-" if rule["value"] is None else f"{rule['value']:.4g}"
        value = "Prometheus" if rule["note"] else value
        state = rule["state"] + (f" since {_time(rule['since'])}" if rule["since"] else "")
        rules.add_row(
            rule["name"], rule["model"], rule["condition"], rule["window"],
            f"{rule['for_s']:g}s", state, value, rule["action"],
        )  # fmt: skip
    console.print(rules if data["rules"] else "no alert rules (monitoring.alerts)")
    if not data["events"]:
        return
    events = Table(title="recent events")
    for column in ("at", "rule", "event", "version", "value", "note"):
        events.add_column(column)
    for event in data["events"]:
        value = "-" if event["value"] is None else f"{event['value']:.4g}"
        version = "-" if event["version"] is None else f"v{event['version']}"
        events.add_row(
            _time(event["at"]), event["rule"], event["kind"], version, value, event["note"] or ""
        )
    console.print(events)


def _time(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")


@app.command("export-prometheus")
def export_prometheus(
    output: Path | None = typer.Option(None, "--output", help="Write to FILE (default: stdout)."),
) -> None:
    """The rules as Prometheus alerting rules (for Alertmanager): error rate and latency
    from servewell's /metrics, the rest on servewell_monitor_value."""
    import yaml

    from servewell.errors import InvalidInput
    from servewell.monitoring.prometheus_rules import prometheus_rules
    from servewell.settings import load_settings

    with reporting_errors():
        text = yaml.safe_dump(prometheus_rules(load_settings().monitoring), sort_keys=False)
        if output is None:
            sys.stdout.write(text)
            return
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot write {output}: {exc.strerror}") from None
    console.print(f"wrote {output}")
