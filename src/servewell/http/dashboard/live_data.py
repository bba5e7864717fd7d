"""The Live page's data: the server's recent traffic per model version, from its own
metrics (``observability/live.py``), as the JSON the page polls."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from servewell.http.running import RunningServer
from servewell.observability.metrics import is_multiprocess

#: Rows of each chart's table: the newest points.
TABLE_POINTS = 5


@dataclass(frozen=True, slots=True)
class Chart:
    key: str
    """The point's field it draws (``LivePoint``)."""
    title: str
    unit: str
    scale: float = 1.0
    """Multiplies the field for display (seconds to milliseconds, ratios to percent)."""


CHARTS = (
    Chart("requests_per_s", "Request rate", "requests/s"),
    Chart("p50_s", "p50 latency", "ms", 1000.0),
    Chart("p99_s", "p99 latency", "ms", 1000.0),
    Chart("error_rate", "Error rate (4xx and 5xx)", "%", 100.0),
    Chart("batch_rows", "Rows per model call", "rows"),
    Chart("cache_hit_ratio", "Cache hit ratio", "%", 100.0),
    Chart("queue_depth", "Queue depth", "requests"),
)


def live_data(server: RunningServer, model: str | None = None) -> dict[str, Any]:
    """Every served version's points over the ring's window (``model``'s alone when
    given), oldest first; ``workers`` says whether the figures add up every worker's
    (``--workers N``: read from the files ``/metrics`` merges) or this process's."""
    ring = server.live
    return {
        "interval_s": ring.interval_s,
        "window_s": ring.window_s,
        "workers": "all" if is_multiprocess() else "this process",
        "charts": [asdict(chart) for chart in CHARTS],
        "series": [asdict(series) for series in ring.series(model)],
    }


def recent_rows(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per chart: the newest points as a table (time, then a column per version), the
    figures a screen reader reads instead of the chart."""
    series = data["series"]
    columns = [f"{one['model']}@{one['version']}" for one in series]
    times = sorted({p["at"] for one in series for p in one["points"]})[-TABLE_POINTS:]
    tables = {}
    for chart in CHARTS:
        rows = []
        for at in times:
            cells = [_cell(one, at, chart) for one in series]
            rows.append([datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S"), *cells])
        tables[chart.key] = {"columns": columns, "rows": rows}
    return tables


def _cell(series: dict[str, Any], at: float, chart: Chart) -> str:
    for p in series["points"]:
        if p["at"] == at:
            value = p[chart.key]
            return "—" if value is None else f"{value * chart.scale:.4g}"
    return "—"
