"""``servewell traffic``: split a model's requests between versions, mirror some to a shadow.

The policy lives in the registry, so every server on it reads the same one. What a
policy does to requests is the serving step's (docs/architecture.md, "Not built yet");
these commands store, check and show it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from servewell.cli.output import console, open_services, print_json, reporting_errors, who_am_i

if TYPE_CHECKING:
    from servewell.core.traffic import TrafficPolicy
    from servewell.registry import SqlRegistry

app = typer.Typer(
    help="Split a model's requests between versions (sticky A/B), mirror some to a shadow.",
    no_args_is_help=True,
)

_NOT_MEASURED = (
    "this is the stored policy; requests, error rate and p50/p99 per arm are not measured yet"
)


@app.command("split")
def split(
    name: str = typer.Argument(..., help="Model name."),
    arms: list[str] = typer.Argument(
        ..., help="TARGET=WEIGHT, e.g. 2=90 3=10 or production=90 canary=10 (sum: 100)."
    ),
    sticky_header: str | None = typer.Option(
        None, "--sticky-header", help="Header naming the user (default X-User-ID, or as stored)."
    ),
    experiment: str | None = typer.Option(
        None, "--experiment", help="Experiment id; a new one reshuffles users between arms."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Split NAME's requests between versions or aliases by weight (whole percentages).

    A request with the sticky header always gets the same arm for the same experiment;
    one without it gets an arm at random by weight. The experiment id stays while the
    arms' targets do, so changing only weights moves only the users near the boundary.
    """
    from servewell.core.ref import check_name
    from servewell.core.traffic import Arm
    from servewell.registry.traffic import TrafficStore

    with reporting_errors():
        check_name(name)
        parsed = [Arm.parse(arm) for arm in arms]
    with open_services() as services:
        policy = TrafficStore(services.registry).set_split(
            name, parsed, sticky_header=sticky_header, experiment_id=experiment, by=who_am_i()
        )
        _print(services.registry, policy, as_json)


@app.command("shadow")
def shadow(
    name: str = typer.Argument(..., help="Model name."),
    target: str | None = typer.Argument(None, help="Version or alias that gets the copies."),
    percent: float | None = typer.Option(None, "--percent", help="Share of requests, 0-100."),
    off: bool = typer.Option(False, "--off", help="Stop mirroring (the split stays)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Mirror PERCENT % of NAME's requests to TARGET (callers get the primary's answer)."""
    from servewell.core.ref import check_name
    from servewell.core.traffic import Shadow, check_target
    from servewell.errors import InvalidTrafficPolicy
    from servewell.registry.traffic import TrafficStore

    with reporting_errors():
        check_name(name)
        if off == (target is not None):
            raise InvalidTrafficPolicy("give a TARGET and --percent, or --off")
        if target is not None and percent is None:
            raise InvalidTrafficPolicy(f"how much to mirror to {target}? add --percent, e.g. 10")
        mirror = Shadow(check_target(target), percent) if target and percent is not None else None
    with open_services() as services:
        store = TrafficStore(services.registry)
        store.set_shadow(name, mirror, by=who_am_i())
        policy = store.get(name)
        if policy is None:
            console.print(f"{name} has no traffic policy left: requests resolve as usual")
            return
        _print(services.registry, policy, as_json)


@app.command("show")
def show(
    name: str | None = typer.Argument(None, help="Model name; default: every policy."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a model's traffic policy (or every model's): arms, shares, shadow."""
    from servewell.core.ref import check_name
    from servewell.registry.traffic import TrafficStore

    with open_services() as services:
        store = TrafficStore(services.registry)
        if name is None:
            policies = store.list()
        else:
            found = store.get(check_name(name))
            policies = [found] if found is not None else []
        if as_json:
            data = [_to_dict(services.registry, policy) for policy in policies]
            print_json(data if name is None else (data[0] if data else None))
            return
        if not policies:
            console.print(_no_policy(name))
        for policy in policies:
            _print(services.registry, policy, as_json=False)


@app.command("clear")
def clear(name: str = typer.Argument(..., help="Model name.")) -> None:
    """Remove NAME's split and shadow: its requests resolve as without a policy."""
    from servewell.core.ref import check_name
    from servewell.registry.traffic import TrafficStore

    with open_services() as services:
        cleared = TrafficStore(services.registry).clear(check_name(name), by=who_am_i())
    console.print(f"cleared the traffic policy of {name}" if cleared else _no_policy(name))


def _no_policy(name: str | None) -> str:
    if name is None:
        return "no traffic policies; set one with [bold]servewell traffic split …[/]"
    return f"{name} has no traffic policy: requests go to {name}@production, else its latest"


def _print(registry: SqlRegistry, policy: TrafficPolicy, as_json: bool) -> None:
    if as_json:
        print_json(_to_dict(registry, policy))
        return
    table = Table(title=f"traffic of {policy.model}", title_justify="left")
    for column in ("arm", "serves", "weight", "share"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    for arm in policy.arms:
        serves = _serves(registry, policy.model, arm.target)
        table.add_row(arm.target, serves, str(arm.weight), f"{100 * policy.share(arm):g} %")
    if not policy.arms:
        table.add_row("(no split)", _serves(registry, policy.model, None), "", "100 %")
    if policy.shadow is not None:
        target = policy.shadow.target
        table.add_row(
            f"shadow {target}",
            _serves(registry, policy.model, target),
            "",
            f"copies of {policy.shadow.percent:g} %",
        )
    console.print(table)
    if policy.arms:
        console.print(
            f"experiment {policy.experiment_id}, sticky on {policy.sticky_header} "
            "(requests without it: an arm at random by weight)",
            highlight=False,
            soft_wrap=True,
        )
    by = f" by {policy.updated_by}" if policy.updated_by else ""
    console.print(
        f"revision {policy.revision}, changed {policy.updated_at:%Y-%m-%d %H:%M:%S} UTC{by}",
        highlight=False,
    )
    console.print(_NOT_MEASURED, style="dim", highlight=False, soft_wrap=True)


def _serves(registry: SqlRegistry, name: str, target: str | None) -> str:
    version = _resolved(registry, name, target)
    return f"version {version}" if version is not None else "[red]nothing (alias removed)[/]"


def _resolved(registry: SqlRegistry, name: str, target: str | None) -> int | None:
    """The version a target resolves to now (aliases move), or None."""
    from servewell.core.ref import ModelRef
    from servewell.errors import NotFound

    try:
        return registry.resolve(ModelRef.parse(f"{name}@{target}" if target else name)).version
    except NotFound:
        return None


def _to_dict(registry: SqlRegistry, policy: TrafficPolicy) -> dict[str, Any]:
    shadow = policy.shadow
    return {
        "model": policy.model,
        "arms": [
            {
                "target": arm.target,
                "weight": arm.weight,
                "share": policy.share(arm),
                "serves": _resolved(registry, policy.model, arm.target),
            }
            for arm in policy.arms
        ],
        "sticky_header": policy.sticky_header,
        "experiment_id": policy.experiment_id,
        "shadow": {"target": shadow.target, "percent": shadow.percent} if shadow else None,
        "revision": policy.revision,
        "updated_at": policy.updated_at.isoformat(),
        "updated_by": policy.updated_by,
    }
