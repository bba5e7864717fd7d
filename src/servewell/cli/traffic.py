"""``servewell traffic``: split a model's requests between versions, mirror some to a shadow.

The policy lives in the registry, so every server on it follows the same one within a
second (``serving/routing.py`` applies it), or in the settings file (``traffic.<model>``,
which wins only with ``source: file``; then these commands refuse to change it). They
store, check and show it; ``show`` adds each arm's accuracy on its labelled predictions,
and ``show --server URL`` what a running server measured per arm.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import typer

from servewell.cli.output import console, open_services, print_json, reporting_errors, who_am_i
from servewell.cli.traffic_view import PolicyView, print_view, to_dict

if TYPE_CHECKING:
    from servewell.bootstrap import Services
    from servewell.core.traffic import TrafficPolicy

app = typer.Typer(
    help="Split a model's requests between versions (sticky A/B), mirror some to a shadow.",
    no_args_is_help=True,
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
    from servewell.core.traffic import Arm, check_split
    from servewell.registry.traffic import TrafficStore
    from servewell.serving.headroom import Change, check_headroom

    with reporting_errors():
        check_name(name)
        parsed = check_split([Arm.parse(arm) for arm in arms])
    with open_services() as services:
        _refuse_if_declared(services, name)
        stored = TrafficStore(services.registry).get(name)
        shadow = () if stored is None or stored.shadow is None else (stored.shadow,)
        check_headroom(services, Change(name, targets=(*parsed, *shadow)))
        policy = TrafficStore(services.registry).set_split(
            name, parsed, sticky_header=sticky_header, experiment_id=experiment, by=who_am_i()
        )
        print_view(_view(services, policy), as_json)


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
        _refuse_if_declared(services, name)
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
        print_view(_view(services, policy), as_json)


@app.command("show")
def show(
    name: str | None = typer.Argument(None, help="Model name; default: every policy."),
    server: str | None = typer.Option(
        None, "--server", help="A running server's URL: add what it measured per arm."
    ),
    since: str | None = typer.Option(
        None,
        "--since",
        help="Score each arm's labelled predictions of this long (1h, 7d); "
        "default: since the policy last changed.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show the traffic policy a model's servers follow (or every model's): arms, shares,
    shadow, where it comes from (the registry or the settings file), and each arm's
    accuracy on its labelled predictions; with --server, each arm's requests, error rate
    (5xx) and p50/p99 since that server started."""
    from servewell.core.ref import check_name

    with reporting_errors():
        window_s = _since_s(since)
        if name is not None:
            check_name(name)
    with open_services() as services:
        policies, declared = _active(services, name)
        text = _scrape(server) if server is not None else None
        views = [_view(services, p, declared.get(p.model), text, window_s) for p in policies]
        if as_json:
            data = [to_dict(view) for view in views]
            print_json(data if name is None else (data[0] if data else None))
            return
        if not views:
            owned = declared.get(name or "")
            console.print(
                f"{name} has no traffic policy: {owned.declared_in} owns it (source: file) "
                "and declares none"
                if owned is not None and owned.file_wins
                else _no_policy(name)
            )
        for view in views:
            print_view(view, as_json=False)


@app.command("clear")
def clear(name: str = typer.Argument(..., help="Model name.")) -> None:
    """Remove NAME's split and shadow from the registry: its requests resolve as without
    a policy (or by the settings file's policy for it, if it declares one)."""
    from servewell.core.ref import check_name
    from servewell.registry.traffic import TrafficStore

    with open_services() as services:
        declared = _refuse_if_declared(services, check_name(name))
        cleared = TrafficStore(services.registry).clear(name, by=who_am_i())
    if not cleared:
        console.print(_no_policy(name))
        return
    console.print(f"cleared the traffic policy of {name}")
    if declared is not None and not declared.is_empty:
        console.print(f"the policy {declared.declared_in} declares for {name} applies now")


def _declared(services: Services) -> dict[str, TrafficPolicy]:
    """The policies the settings file declares (InvalidConfig naming a bad key)."""
    from servewell.serving.traffic import declared_policies

    return declared_policies(services.settings)


def _refuse_if_declared(services: Services, name: str) -> TrafficPolicy | None:
    """``name``'s declared policy; exit 2 when the file owns it (``source: file``)."""
    from servewell.serving.traffic import refuse_if_declared

    return refuse_if_declared(_declared(services), name)


def _active(
    services: Services, name: str | None
) -> tuple[list[TrafficPolicy], dict[str, TrafficPolicy]]:
    """The policies servers follow (``name``'s, or every model's), as a server on these
    settings would choose them, and the declared ones."""
    from servewell.core.traffic import active_policies
    from servewell.registry.traffic import TrafficStore

    store = TrafficStore(services.registry)
    declared = _declared(services)
    if name is None:
        return list(active_policies(store.list(), declared).values()), declared
    stored = store.get(name)  # ModelNotFound (exit 4) when not registered
    mine = {name: declared[name]} if name in declared else {}
    found = active_policies([stored] if stored is not None else [], mine).get(name)
    return ([found] if found is not None else []), declared


def _view(
    services: Services,
    policy: TrafficPolicy,
    declared: TrafficPolicy | None = None,
    metrics_text: str | None = None,
    quality_window_s: float | None = None,
) -> PolicyView:
    """What ``policy``'s table shows; with ``quality_window_s`` (``show``) each arm's
    quality too: over that many seconds, or (0) since the policy last changed."""
    targets = [*policy.targets, *([policy.shadow.target] if policy.shadow else []), ""]
    view = PolicyView(
        policy,
        {target: _resolved(services, policy.model, target) for target in targets},
        declared_in=declared.declared_in if declared is not None else None,
    )
    if metrics_text is not None:
        from servewell.observability.arm_stats import arm_stats
        from servewell.observability.shadow_stats import shadow_stats

        view.measured = arm_stats(metrics_text, policy.model)
        view.shadowed = shadow_stats(metrics_text, policy.model)
    if quality_window_s is not None and policy.arms:
        from servewell.errors import ModelNotFound
        from servewell.monitoring.arms import arm_quality

        since = policy.updated_at
        if quality_window_s:
            since = datetime.now(UTC) - timedelta(seconds=quality_window_s)
        try:
            view.quality = arm_quality(services, policy.model, since)
            view.quality_since = since
        except ModelNotFound:  # declared in the file, not registered (yet): nothing logged
            pass
    return view


def _since_s(since: str | None) -> float:
    """``--since`` in seconds (0: since the policy last changed)."""
    from servewell.errors import InvalidInput
    from servewell.settings.monitoring import parse_duration_s

    if since is None:
        return 0.0
    try:
        seconds = parse_duration_s(since)
    except ValueError as exc:
        raise InvalidInput(f"--since: {exc}") from None
    if seconds <= 0:
        raise InvalidInput("--since: give a duration longer than 0, e.g. 1h")
    return seconds


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


def _resolved(services: Services, name: str, target: str) -> int | None:
    """The version a target resolves to now (aliases move; "": the bare name), or None."""
    from servewell.core.ref import ModelRef
    from servewell.errors import NotFound

    try:
        ref = ModelRef.parse(f"{name}@{target}" if target else name)
        return services.registry.resolve(ref).version
    except NotFound:
        return None
