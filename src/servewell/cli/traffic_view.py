"""How ``servewell traffic`` shows a policy: one :class:`PolicyView` (the policy, what
each target serves now, where it came from, and what was measured) printed as a Rich
table or as JSON, with the same figures in both."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.table import Table

from servewell.cli.output import console, print_json

if TYPE_CHECKING:
    from servewell.core.traffic import TrafficPolicy
    from servewell.monitoring.arms import ArmQuality
    from servewell.observability.arm_stats import ArmStats
    from servewell.observability.shadow_stats import ShadowStats

#: What a figure reads as when there is none to show (no labels yet, nothing measured).
NONE = "—"
_NOT_MEASURED = (
    "this is the stored policy; add --server URL (a running server) for requests, error "
    "rate and p50/p99 per arm"
)
_MEASURED = ("requests", "errors", "p50", "p99")


@dataclass
class PolicyView:
    """Everything one policy's table (or JSON) shows."""

    policy: TrafficPolicy
    serves: dict[str, int | None]
    """Each target (arms', shadow's) -> the version it resolves to now (None: nothing)."""
    declared_in: str | None = None
    """The settings file declaring a policy for the model, active or waiting."""
    measured: dict[str, ArmStats] | None = None
    """Per arm, what a running server measured (``--server``)."""
    shadowed: ShadowStats | None = None
    quality: dict[str, ArmQuality] | None = None
    """Per arm, its labelled predictions' figure (``show``; None: not looked at)."""
    quality_since: datetime | None = None


def print_view(view: PolicyView, as_json: bool) -> None:
    if as_json:
        print_json(to_dict(view))
        return
    policy, measured = view.policy, view.measured
    table = Table(title=f"traffic of {policy.model}", title_justify="left")
    metric = _quality_metric(view)
    columns = ["arm", "serves", "weight", "share", *(_MEASURED if measured is not None else ())]
    if view.quality is not None:
        columns += ["labels", metric]
    for column in columns:
        table.add_column(column, justify="left" if column == "arm" else "right")
    for arm in policy.arms:
        cells = _measured_cells(measured.get(arm.target)) if measured is not None else []
        if view.quality is not None:
            cells += _quality_cells(view.quality.get(arm.target))
        share = f"{100 * policy.share(arm):g} %"
        table.add_row(arm.target, _serves(view, arm.target), str(arm.weight), share, *cells)
    if not policy.arms:
        table.add_row("(no split)", _serves(view, None), "", "100 %")
    if policy.shadow is not None:
        target = policy.shadow.target
        table.add_row(
            f"shadow {target}",
            _serves(view, target),
            "",
            f"copies of {policy.shadow.percent:g} %",
            *(_shadow_cells(view.shadowed) if measured is not None else []),
        )
    console.print(table)
    for line, style in _notes(view):
        console.print(line, style=style, highlight=False, soft_wrap=True)


def _notes(view: PolicyView) -> list[tuple[str, str | None]]:
    """The lines under the table: shadow figures, experiment, origin, what was measured."""
    policy = view.policy
    notes: list[tuple[str, str | None]] = []
    if policy.shadow is not None and view.shadowed is not None:
        notes.append((_describe_shadow(view.shadowed), None))
    if policy.arms:
        notes.append(
            (
                f"experiment {policy.experiment_id}, sticky on {policy.sticky_header} "
                "(requests without it: an arm at random by weight)",
                None,
            )
        )
    notes.append((describe_source(policy, view.declared_in), None))
    if view.measured is None:
        notes.append((_NOT_MEASURED, "dim"))
    else:
        notes.append(("measured by that server since it started; errors are 5xx answers", "dim"))
    if view.quality is not None and view.quality_since is not None:
        since = f"{view.quality_since:%Y-%m-%d %H:%M:%S} UTC"
        notes.append(
            (
                f"labels: logged predictions of each arm since {since} joined with their "
                f"feedback; {NONE}: none labelled yet",
                "dim",
            )
        )
    return notes


def describe_source(policy: TrafficPolicy, declared_in: str | None) -> str:
    """Where the policy served comes from, and what the other source holds."""
    when = f"{policy.updated_at:%Y-%m-%d %H:%M:%S} UTC"
    if policy.declared_in is not None:
        if policy.file_wins:
            why = "source: file, so the registry's policy, if any, is not served"
        else:
            why = "the registry holds none; one set with servewell traffic would win"
        return f"declared in {policy.declared_in} ({why}); file changed {when}"
    by = f" by {policy.updated_by}" if policy.updated_by else ""
    text = f"from the registry: revision {policy.revision}, changed {when}{by}"
    if declared_in is not None:
        text += f" ({declared_in} declares one too: it applies once this one is cleared)"
    return text


def to_dict(view: PolicyView) -> dict[str, Any]:
    policy = view.policy
    shadow = policy.shadow
    shadow_dict: dict[str, Any] | None = None
    if shadow is not None:
        shadow_dict = {"target": shadow.target, "percent": shadow.percent}
        if view.shadowed is not None:
            shadowed = view.shadowed
            shadow_dict["measured"] = {**asdict(shadowed), "agreement": shadowed.agreement}
    arms: list[dict[str, Any]] = []
    for arm in policy.arms:
        entry: dict[str, Any] = {
            "target": arm.target,
            "weight": arm.weight,
            "share": policy.share(arm),
            "serves": view.serves.get(arm.target),
        }
        if view.measured is not None:
            entry["measured"] = _measured_dict(view.measured.get(arm.target))
        if view.quality is not None:
            entry["quality"] = _quality_dict(view.quality.get(arm.target), _quality_metric(view))
        arms.append(entry)
    since = view.quality_since
    return {
        "model": policy.model,
        "arms": arms,
        "sticky_header": policy.sticky_header,
        "experiment_id": policy.experiment_id,
        "shadow": shadow_dict,
        "source": policy.source,
        "file_wins": policy.file_wins,
        "declared_in": view.declared_in,
        "revision": policy.revision,
        "updated_at": policy.updated_at.isoformat(),
        "updated_by": policy.updated_by,
        **({"quality_since": since.isoformat()} if since is not None else {}),
    }


def _measured_dict(stats: ArmStats | None) -> dict[str, Any]:
    return {
        "requests": stats.requests if stats else 0,
        "errors": stats.errors if stats else 0,
        "error_rate": stats.error_rate if stats else None,
        "p50_s": stats.p50_s if stats else None,
        "p99_s": stats.p99_s if stats else None,
        "versions": list(stats.versions) if stats else [],
    }


def _quality_dict(found: ArmQuality | None, metric: str) -> dict[str, Any]:
    if found is None:
        return {"labelled": 0, "scored": 0, "metric": metric, "value": None}
    return {
        "labelled": found.labelled,
        "scored": found.scored,
        "metric": found.metric,
        "value": found.value,
    }


def _quality_metric(view: PolicyView) -> str:
    """The figure the arms are scored by: a regressor's MAE, else accuracy."""
    found = view.quality or {}
    scored = [quality.metric for quality in found.values() if quality.value is not None]
    return scored[0] if scored else "accuracy"


def _quality_cells(found: ArmQuality | None) -> list[str]:
    if found is None or found.value is None:
        return [f"{found.labelled:,}" if found else "0", NONE]
    return [f"{found.labelled:,}", f"{found.value:.3f}"]


def _measured_cells(stats: ArmStats | None) -> list[str]:
    if stats is None:
        return ["0", "", "", ""]
    return [str(stats.requests), *_rate_and_latency(stats.error_rate, stats.p50_s, stats.p99_s)]


def _shadow_cells(stats: ShadowStats | None) -> list[str]:
    if stats is None:
        return ["0", "", "", ""]
    return [str(stats.copies), *_rate_and_latency(stats.error_rate, stats.p50_s, stats.p99_s)]


def _rate_and_latency(rate: float | None, p50_s: float | None, p99_s: float | None) -> list[str]:
    return [
        f"{100 * rate:.2f} %" if rate is not None else "",
        f"{1000 * p50_s:.1f} ms" if p50_s is not None else "",
        f"{1000 * p99_s:.1f} ms" if p99_s is not None else "",
    ]


def _describe_shadow(stats: ShadowStats) -> str:
    """The shadow's comparisons in a line: rows, agreement, probabilities, drops."""
    agreement = stats.agreement
    text = f"shadow: {stats.rows_compared:,} rows compared"
    if agreement is not None:
        text += f", {100 * agreement:.2f} % agree"
    if stats.probability_diff_p99 is not None:
        text += f"; largest probability difference p99 {stats.probability_diff_p99:.3g}"
    text += f"; {stats.errors:,} copies failed, {stats.dropped:,} dropped"
    return text


def _serves(view: PolicyView, target: str | None) -> str:
    version = view.serves.get(target or "")
    return f"version {version}" if version is not None else "[red]nothing (alias removed)[/]"
