"""``servewell gc``: list (dry run) or delete artifact files no version references."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from servewell.cli.output import console, open_services, print_json
from servewell.cli.versions import format_size
from servewell.registry.sweep import DEFAULT_GRACE_S, Leftover, StoreSweep


def gc(
    apply: bool = typer.Option(False, "--apply", help="Delete the files (default: only list)."),
    grace_s: float = typer.Option(
        DEFAULT_GRACE_S,
        "--grace-s",
        min=0.0,
        help="Keep files younger than this many seconds: a registration may be using them.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Sweep the artifact store: files no version references, and staging leftovers of
    killed registrations, once older than the grace period. Never a referenced file."""
    with open_services() as services:
        sweep = StoreSweep(services.registry, services.artifacts, grace_s)
        leftovers = sweep.find()
        removed = sweep.remove(leftovers) if apply else []
        root = services.artifacts.root
    shown = removed if apply else leftovers
    if as_json:
        print_json(
            {
                "applied": apply,
                "files": [_to_dict(item, root) for item in shown],
                "size_bytes": sum(item.size_bytes for item in shown),
            }
        )
        return
    if not shown:
        console.print(f"nothing to sweep in {root}")
        return
    console.print(_table(shown, root, apply))
    total = format_size(sum(item.size_bytes for item in shown))
    if apply:
        console.print(f"deleted {len(shown)} file(s), {total}")
    else:
        console.print(f"{len(shown)} file(s), {total}; run with [bold]--apply[/] to delete them")


def _table(leftovers: list[Leftover], root: Path, applied: bool) -> Table:
    title = "Deleted" if applied else "Would delete (dry run)"
    table = Table(title=f"{title} in {root}", title_justify="left")
    for column in ("file", "why", "size", "modified (UTC)"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for item in leftovers:
        table.add_row(
            str(item.path.relative_to(root)),
            item.reason,
            format_size(item.size_bytes),
            item.modified_at.strftime("%Y-%m-%d %H:%M"),
        )
    return table


def _to_dict(item: Leftover, root: Path) -> dict[str, object]:
    return {
        "path": str(item.path.relative_to(root)),
        "reason": item.reason,
        "size_bytes": item.size_bytes,
        "modified_at": item.modified_at.isoformat(),
    }
