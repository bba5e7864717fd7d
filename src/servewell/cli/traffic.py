"""``servewell traffic``: split a model's requests between versions, mirror some to a shadow.

The policy lives in the registry, so every server on it follows the same one within a
second (``serving/routing.py`` applies it); these commands store, check and show it, and
``show --server URL`` adds what a running server measured per arm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from servewell.cli.output import console, open_services, print_json, reporting_errors, who_am_i

if TYPE_CHECKING:
    from servewell.core.traffic import TrafficPolicy
    from servewell.observability.arm_stats import ArmStats
    from servewell.observability.shadow_stats import ShadowStats
    from servewell.registry import SqlRegistry

    Measured = dict[str, ArmStats]

app = typer.Typer(
    help="Split a model's requests between versions (sticky A/B), mirror some to a shadow.",
    no_args_is_help=True,
)

_NOT_MEASURED = (
    "this is the stored policy; add --server URL (a running server) for requests, error "
    "rate and p50/p99 per arm"
)
_MEASURED = ("requests", "errors", "p50", "p99")


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
    from servewell.core.traffic import Arm, check_split
    from servewell.registry.traffic import TrafficStore
    from servewell.serving.headroom import Change, check_headroom

    with reporting_errors():
        check_name(name)
        parsed = check_split([Arm.parse(arm) for arm in arms])
    with open_services() as services:
        stored = TrafficStore(services.registry).get(name)
        shadow = () if stored is None or stored.shadow is None else (stored.shadow,)
        check_headroom(services, Change(name, targets=(*parsed, *shadow)))
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
    from servewell.serving.headroom import Change, check_headroom

    with reporting_errors():
        check_name(name)
        if off == (target is not None):
            raise InvalidTrafficPolicy("give a TARGET and --percent, or --off")
        if target is not None and percent is None:
            raise InvalidTrafficPolicy(f"how much to mirror to {target}? add --percent, e.g. 10")
        mirror = Shadow(check_target(target), percent) if target and percent is not None else None
    with open_services() as services:
        store = TrafficStore(services.registry)
        if mirror is not None:
            stored = store.get(name)
            arms = () if stored is None else stored.arms
            check_headroom(services, Change(name, targets=(*arms, mirror)))
        store.set_shadow(name, mirror, by=who_am_i())
        policy = store.get(name)
        if policy is None:
            console.print(f"{name} has no traffic policy left: requests resolve as usual")
            return
        _print(services.registry, policy, as_json)


@app.command("show")
def show(
    name: str | None = typer.Argument(None, help="Model name; default: every policy."),
    server: str | None = typer.Option(
        None, "--server", help="A running server's URL: add what it measured per arm."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a model's traffic policy (or every model's): arms, shares, shadow; with
    --server, each arm's requests, error rate (5xx) and p50/p99 since that server started."""
    from servewell.core.ref import check_name
    from servewell.registry.traffic import TrafficStore

    with open_services() as services:
        store = TrafficStore(services.registry)
        if name is None:
            policies = store.list()
        else:
            found = store.get(check_name(name))
            policies = [found] if found is not None else []
        text = _scrape(server) if server is not None else None
        measured = {p.model: _measured(text, p.model) for p in policies} if text else {}
        shadowed = {p.model: _shadow_measured(text, p.model) for p in policies} if text else {}
        if as_json:
            data = [
                _to_dict(services.registry, p, measured.get(p.model), shadowed.get(p.model))
                for p in policies
            ]
            print_json(data if name is None else (data[0] if data else None))
            return
        if not policies:
            console.print(_no_policy(name))
        for policy in policies:
            _print(
                services.registry,
                policy,
                as_json=False,
                measured=measured.get(policy.model),
                shadowed=shadowed.get(policy.model),
            )


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


def _scrape(server: str) -> str:
    """The running server's ``/metrics`` text (Unavailable when it does not answer)."""
    import httpx

    from servewell.errors import Unavailable

    url = server.rstrip("/") + "/metrics"
    with reporting_errors():
        try:
            answer = httpx.get(url, timeout=10.0)
            answer.raise_for_status()
        except httpx.HTTPError as exc:
            raise Unavailable(f"the server's metrics at {url} ({exc})") from exc
    return answer.text


def _measured(text: str, model: str) -> Measured:
    from servewell.observability.arm_stats import arm_stats

    return arm_stats(text, model)


def _shadow_measured(text: str, model: str) -> ShadowStats:
    from servewell.observability.shadow_stats import shadow_stats

    return shadow_stats(text, model)


def _measured_cells(stats: ArmStats | None) -> list[str]:
    if stats is None:
        return ["0", "", "", ""]
    rate = stats.error_rate
    return [
        str(stats.requests),
        f"{100 * rate:.2f} %" if rate is not None else "",
        f"{1000 * stats.p50_s:.1f} ms" if stats.p50_s is not None else "",
        f"{1000 * stats.p99_s:.1f} ms" if stats.p99_s is not None else "",
    ]


def _print(
    registry: SqlRegistry,
    policy: TrafficPolicy,
    as_json: bool,
    measured: Measured | None = None,
    shadowed: ShadowStats | None = None,
) -> None:
    if as_json:
        print_json(_to_dict(registry, policy, measured, shadowed))
        return
    table = Table(title=f"traffic of {policy.model}", title_justify="left")
    columns = ("arm", "serves", "weight", "share", *(_MEASURED if measured is not None else ()))
    for column in columns:
        table.add_column(column, justify="left" if column == "arm" else "right")
    for arm in policy.arms:
        serves = _serves(registry, policy.model, arm.target)
        cells = _measured_cells(measured.get(arm.target)) if measured is not None else []
        table.add_row(arm.target, serves, str(arm.weight), f"{100 * policy.share(arm):g} %", *cells)
    if not policy.arms:
        table.add_row("(no split)", _serves(registry, policy.model, None), "", "100 %")
    if policy.shadow is not None:
        target = policy.shadow.target
        table.add_row(
            f"shadow {target}",
            _serves(registry, policy.model, target),
            "",
            f"copies of {policy.shadow.percent:g} %",
            *(_shadow_cells(shadowed) if measured is not None else []),
        )
    console.print(table)
    if policy.shadow is not None and shadowed is not None:
        console.print(_describe_shadow(shadowed), highlight=False, soft_wrap=True)
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
    if measured is None:
        console.print(_NOT_MEASURED, style="dim", highlight=False, soft_wrap=True)
    else:
        console.print(
            "measured by that server since it started; errors are 5xx answers",
            style="dim",
            highlight=False,
            soft_wrap=True,
        )


def _shadow_cells(stats: ShadowStats | None) -> list[str]:
    if stats is None:
        return ["0", "", "", ""]
    rate, p50, p99 = stats.error_rate, stats.p50_s, stats.p99_s
    return [
        str(stats.copies),
        f"{100 * rate:.2f} %" if rate is not None else "",
        f"{1000 * p50:.1f} ms" if p50 is not None else "",
        f"{1000 * p99:.1f} ms" if p99 is not None else "",
    ]


def _describe_shadow(stats: ShadowStats) -> str:
    """The shadow's comparisons in a line: rows, agreement, probabilities, drops."""
    agreement = stats.agreement
    text = f"shadow: {stats.rows_compared:,} rows compared"
    if agreement is not None:
        text += f", {100 * agreement:.2f} % agree"
    if stats.probability_diff_p99 is not None:
        text += f"; largest probability difference p99 {stats.probability_diff_p99:.3g}"
    text += f"; {stats.errors:,} copies failed, {stats.dropped:,} dropped (queue full)"
    return text


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


def _to_dict(
    registry: SqlRegistry,
    policy: TrafficPolicy,
    measured: Measured | None = None,
    shadowed: ShadowStats | None = None,
) -> dict[str, Any]:
    shadow = policy.shadow
    shadow_dict: dict[str, Any] | None = None
    if shadow is not None:
        shadow_dict = {"target": shadow.target, "percent": shadow.percent}
        if shadowed is not None:
            from dataclasses import asdict

            shadow_dict["measured"] = {**asdict(shadowed), "agreement": shadowed.agreement}
    arms: list[dict[str, Any]] = [
        {
            "target": arm.target,
            "weight": arm.weight,
            "share": policy.share(arm),
            "serves": _resolved(registry, policy.model, arm.target),
        }
        for arm in policy.arms
    ]
    if measured is not None:
        for arm in arms:
            stats = measured.get(arm["target"])
            arm["measured"] = {
                "requests": stats.requests if stats else 0,
                "errors": stats.errors if stats else 0,
                "error_rate": stats.error_rate if stats else None,
                "p50_s": stats.p50_s if stats else None,
                "p99_s": stats.p99_s if stats else None,
                "versions": list(stats.versions) if stats else [],
            }
    return {
        "model": policy.model,
        "arms": arms,
        "sticky_header": policy.sticky_header,
        "experiment_id": policy.experiment_id,
        "shadow": shadow_dict,
        "revision": policy.revision,
        "updated_at": policy.updated_at.isoformat(),
        "updated_by": policy.updated_by,
    }
