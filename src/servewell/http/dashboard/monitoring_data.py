"""The dashboard's Monitoring data: one model's drift, quality over time, prediction
distribution and alerts, read by the functions ``servewell monitor`` and ``servewell
alerts`` use (``monitoring/run.py``, ``monitoring/alert_status.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the monitoring code imports numpy, scipy, scikit-learn: on first use
    from servewell.monitoring.alert_status import AlertStatus
    from servewell.registry import RegistryAccess

#: The window the page opens on.
DEFAULT_WINDOW = "1d"


@dataclass(frozen=True, slots=True)
class MonitoringData:
    model: str | None
    """The model shown (None: no model is registered)."""
    models: list[str]
    window: str
    report: dict[str, Any] | None
    """``MonitorReport.to_dict()``: per version and arm, drift per feature with its
    tests, quality and label coverage per slice, the prediction distribution."""
    alerts: AlertStatus


def monitoring_data(
    access: RegistryAccess, model: str | None = None, window: str = DEFAULT_WINDOW
) -> MonitoringData:
    """``model``'s window (the first registered model's when None); InvalidInput for a
    bad window, NotFound for an unknown model. Reads the database: call it off the loop."""
    from servewell.monitoring.alert_status import alert_status
    from servewell.monitoring.run import monitor
    from servewell.monitoring.window import Span

    span = Span.parse(window)
    models = sorted(summary.name for summary in access.registry.list_models())
    name = model or (models[0] if models else None)
    report = None if name is None else monitor(access, name, span).to_dict()
    return MonitoringData(name, models, window, report, alert_status(access, name))


def over_time(group: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    """A group's slices as a chart: its headline quality metric and label coverage per
    slice, and drift (PSI) per feature (each slice's end on the x axis, in seconds; the
    axis spans a time window's start to its end)."""
    slices = group["slices"]
    x = [datetime.fromisoformat(part["last_at"]).timestamp() for part in slices]
    start = report["start"] and datetime.fromisoformat(report["start"]).timestamp()
    span = {"start": start, "end": datetime.fromisoformat(report["end"]).timestamp()}
    metric = next((part["metric"] for part in slices if part["metric"]), None)
    quality = {
        **span,
        "x": x,
        "series": [
            {"label": metric or "quality", "values": [part["value"] for part in slices]},
            {
                "label": "label coverage",
                "values": [part["labelled"] / part["logged"] for part in slices],
            },
        ],
    }
    features = sorted({name for part in slices for name in part["psi"]})
    drift = {
        **span,
        "x": x,
        "series": [
            {"label": f"PSI {name}", "values": [part["psi"].get(name) for part in slices]}
            for name in features
        ],
    }
    return {"quality": quality, "drift": drift, "metric": metric}
