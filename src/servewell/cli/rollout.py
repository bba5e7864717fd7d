"""``servewell rollout``: move a model's traffic to a new version in steps, and abort
by itself when the new version measures worse than the one serving.

These commands store the rollout in the registry and write its first split; the
running servers (``serving/rollout.py``) report what they measure and one of them
moves it on, so it survives restarts and runs once however many replicas there are.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from servewell.cli.output import console, open_services, print_json, reporting_errors, who_am_i

if TYPE_CHECKING:
    from servewell.core.rollout import Rollout, RolloutEvent, Window
    from servewell.registry import SqlRegistry

app = typer.Typer(
    help="Canary rollouts: traffic to a new version in steps, aborted when it does worse.",
    no_args_is_help=True,
)


@app.command("start")
def start(
    name: str = typer.Argument(..., help="Model name."),
    to: int = typer.Option(..., "--to", help="The candidate version.", min=1),
    steps: str = typer.Option("5,25,50,100", "--steps", help="Candidate's share per step, %."),
    every: str = typer.Option("10m", "--every", help="Time per step, e.g. 10m, 30s."),
    max_error_rate: float = typer.Option(
        0.01, "--max-error-rate", help="How far the candidate's error rate may pass the primary's."
    ),
    max_p99_ratio: float = typer.Option(
        1.5, "--max-p99-ratio", help="How many times the primary's p99 the candidate's may be."
    ),
    min_requests: int = typer.Option(
        50, "--min-requests", help="Requests each version needs in a step before it is judged."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Roll NAME out to version TO: its share of requests rises step by step; before each
    step its error rate and p99 over the last one are compared with the primary's, and a
    broken bound aborts it (back to 0 %). At 100 % the production alias moves to it."""
    from servewell.core.ref import ModelRef, check_name
    from servewell.core.rollout import Bounds, parse_steps
    from servewell.core.traffic import Arm
    from servewell.errors import InvalidRollout
    from servewell.registry.rollout_traffic import apply_step
    from servewell.registry.rollouts import RolloutStore
    from servewell.serving.headroom import Change, check_headroom
    from servewell.serving.traffic import declared_policies, refuse_if_declared
    from servewell.settings.monitoring import parse_duration_s

    with reporting_errors():
        check_name(name)
        planned = parse_steps(steps)
        bounds = Bounds(max_error_rate, max_p99_ratio, min_requests)
        try:
            every_s = parse_duration_s(every)
        except ValueError as exc:
            raise InvalidRollout(f"--every: {exc}") from None
    with open_services() as services:
        # The file has the last word on a model it owns: the steps would never be served.
        refuse_if_declared(declared_policies(services.settings), name)
        # The candidate is loaded beside the primary: refused up front when it does not
        # fit the servers' memory budget (exit 10), as a split by hand would be.
        primary = services.registry.resolve(ModelRef.parse(name)).version
        arms = (Arm(str(primary), 100 - planned[0]), Arm(str(to), planned[0]))
        check_headroom(services, Change(name, targets=arms))
        store = RolloutStore(services.registry)
        rollout = store.start(name, to, planned, every_s, bounds, by=who_am_i())
        apply_step(store, rollout)  # the first step now, whether a server runs or not
        _print(services.registry, store.get(name), as_json)


@app.command("status")
def status(
    name: str = typer.Argument(..., help="Model name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """NAME's latest rollout: state, step, what the step measured so far, why it waits
    or why it was aborted, and every event."""
    from servewell.core.ref import check_name

    with reporting_errors():
        check_name(name)
    with open_services() as services:
        from servewell.registry.rollouts import RolloutStore

        _print(services.registry, RolloutStore(services.registry).get(name), as_json)


@app.command("abort")
def abort(name: str = typer.Argument(..., help="Model name.")) -> None:
    """Abort NAME's running rollout: the candidate's share goes back to 0 %."""
    from servewell.core.ref import check_name
    from servewell.core.rollout import RolloutState
    from servewell.errors import Conflict, RolloutNotFound
    from servewell.registry.rollout_traffic import settle
    from servewell.registry.rollouts import RolloutStore

    with reporting_errors():
        check_name(name)
    with open_services() as services:
        store = RolloutStore(services.registry)
        by = who_am_i()
        for _ in range(10):  # a server may move it on between the read and the write
            rollout = store.get(name)
            if rollout.state is not RolloutState.RUNNING:
                raise RolloutNotFound(name, running=True)
            if store.end(rollout, RolloutState.ABORTED, f"aborted by {by}", by=by):
                break
        else:
            raise Conflict(f"the rollout of {name} kept moving; try again")
        settle(store, store.get(name))
    console.print(f"aborted the rollout of {name} to version {rollout.candidate}: 0 %")


def _print(registry: SqlRegistry, rollout: Rollout, as_json: bool) -> None:
    from servewell.core.rollout import RolloutState
    from servewell.registry.rollout_observations import RolloutObservations
    from servewell.registry.rollouts import RolloutStore

    events = RolloutStore(registry).events(rollout)
    measured: dict[int, Window] = {}
    if rollout.state is RolloutState.RUNNING:
        measured = RolloutObservations(registry).since(rollout.id, rollout.step_started_at)
    if as_json:
        print_json(_to_dict(rollout, events, measured))
        return
    console.print(f"[bold]{rollout.model}[/]: {_summary(rollout)}", highlight=False)
    for line in _details(rollout):
        console.print(f"  {line}", highlight=False)
    if rollout.state is RolloutState.RUNNING:
        console.print(_measured_table(rollout, measured))
    table = Table(title="events", title_justify="left")
    for column in ("when (UTC)", "event", "share", "detail", "by"):
        table.add_column(column)
    for event in events:
        table.add_row(_when(event.at), event.kind, f"{event.percent} %", event.detail, event.by)
    console.print(table)


def _summary(rollout: Rollout) -> str:
    steps = ",".join(map(str, rollout.steps))
    return (
        f"rollout from version {rollout.primary} to {rollout.candidate} {rollout.state.value}, "
        f"candidate at {rollout.percent} % (steps {steps}, every {rollout.every_s:g} s)"
    )


def _details(rollout: Rollout) -> list[str]:
    bounds = rollout.bounds
    lines = [
        f"bounds: error rate at most {bounds.max_error_rate:g} above the primary's, p99 at "
        f"most {bounds.max_p99_ratio:g} x, at least {bounds.min_requests} requests each"
    ]
    if rollout.state.value == "running":
        left = max(0.0, rollout.next_step_at - datetime.now(UTC).timestamp())
        lines.append(f"next step judged at {_when(rollout.next_step_at)} UTC (in {left:.0f} s)")
        if rollout.note:
            lines.append(f"waiting: {rollout.note}")
    if rollout.reason:
        lines.append(f"aborted: {rollout.reason}")
    return lines


def _measured_table(rollout: Rollout, measured: dict[int, Window]) -> Table:
    from servewell.observability.rollout_window import p99_s

    table = Table(title="this step so far (every server)", title_justify="left")
    for column in ("version", "role", "requests", "error rate", "p99"):
        table.add_column(column)
    for version, role in ((rollout.primary, "primary"), (rollout.candidate, "candidate")):
        window = measured.get(version)
        rate = window.error_rate if window else None
        p99 = p99_s(window) if window else None
        table.add_row(
            str(version),
            role,
            str(window.requests if window else 0),
            f"{100 * rate:.2f} %" if rate is not None else "",
            f"{1000 * p99:.1f} ms" if p99 is not None else "",
        )
    return table


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _to_dict(
    rollout: Rollout, events: list[RolloutEvent], measured: dict[int, Window]
) -> dict[str, Any]:
    from dataclasses import asdict

    data = asdict(rollout)
    data["state"] = rollout.state.value
    data["steps"] = list(rollout.steps)
    data["percent"] = rollout.percent
    data["measured"] = {
        str(version): {"requests": w.requests, "errors": w.errors}
        for version, w in measured.items()
    }
    data["events"] = [asdict(event) for event in events]
    return data
