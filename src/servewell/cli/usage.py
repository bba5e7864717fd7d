"""``servewell usage``: what each API key spent on LLM calls, per model and UTC day."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.table import Table

from servewell.cli.output import console, open_services, print_json, reporting_errors

if TYPE_CHECKING:
    from servewell.registry.spend import SpendRow

#: Decimal places a cost keeps (nano-dollars): what sums of float prices carry past it is
#: noise (0.05 + 0.01 is 0.060000000000000005). The table shows 4 of them.
USD_PLACES = 9


def usage(
    key: str | None = typer.Option(None, "--key", help="Only this key ('anonymous': no key)."),
    model: str | None = typer.Option(None, "--model", help="Only this model."),
    since: str = typer.Option("7d", "--since", help="How far back: 1d, 7d, 30d (whole days)."),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
) -> None:
    """Spend per key, model and day: calls, tokens and US dollars."""
    from datetime import UTC, datetime, timedelta

    from servewell.errors import InvalidInput
    from servewell.observability.metrics import ANONYMOUS
    from servewell.registry.keys import ApiKeyStore
    from servewell.registry.spend import SpendStore
    from servewell.settings.monitoring import parse_duration_s

    with reporting_errors():
        try:
            since_s = parse_duration_s(since)
        except ValueError as exc:
            raise InvalidInput(f"--since: {exc}") from None
    first_day = (datetime.now(UTC) - timedelta(seconds=since_s)).date().isoformat()
    with open_services() as services:
        if key is not None and key != ANONYMOUS:
            ApiKeyStore(services.registry).get(key)  # a misspelt key: exit 4, not no rows
        rows = SpendStore(services.registry).rows(first_day, key=key, model=model)
    if as_json:
        print_json([_to_dict(row) for row in rows])
        return
    if not rows:
        console.print(f"no LLM spend since {first_day} (UTC)")
        return
    _print_table(rows, first_day)


def _print_table(rows: list[SpendRow], first_day: str) -> None:
    table = Table(title=f"LLM spend since {first_day} (UTC)", title_justify="left")
    for column in ("day", "key", "model"):
        table.add_column(column, no_wrap=True)
    for column in ("calls", "prompt", "completion", "USD"):  # tokens: prompt, completion
        table.add_column(column, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(
            row.day,
            row.key,
            row.model,
            f"{row.requests:,}",
            f"{row.prompt_tokens:,}",
            f"{row.completion_tokens:,}",
            f"{to_usd(row.cost_usd):.4f}",
        )
    table.add_section()
    table.add_row(
        "total",
        "",
        "",
        f"{sum(row.requests for row in rows):,}",
        f"{sum(row.prompt_tokens for row in rows):,}",
        f"{sum(row.completion_tokens for row in rows):,}",
        f"{to_usd(sum(row.cost_usd for row in rows)):.4f}",
    )
    console.print(table)


def _to_dict(row: SpendRow) -> dict[str, object]:
    return {
        "day": row.day,
        "key": row.key,
        "model": row.model,
        "calls": row.requests,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "cost_usd": to_usd(row.cost_usd),
    }


def to_usd(cost_usd: float) -> float:
    """A cost rounded to :data:`USD_PLACES` decimal places."""
    return round(cost_usd, USD_PLACES)
